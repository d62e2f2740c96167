"""`manage.py runproxy --config FILE`: migrate, load the config, and serve with gunicorn.

The command prepares the database in this process, then replaces itself with gunicorn (exec),
so the workers start clean: gevent patches before Django and psycopg are imported (see
config/gunicorn.py) and no database connection is inherited across fork.
"""

import os
import shutil
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from proxy.management.commands.loadconfig import load_file
from proxy.models import Deployment


def router_first_alias() -> str:
    return (
        Deployment.objects.filter(enabled=True).order_by("model_name").values_list("model_name", flat=True).first()
        or ""
    )


class Command(BaseCommand):
    help = "Apply migrations, load a LiteLLM config file and serve Tollgate with gunicorn."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--config", help="Path to litellm_config.yaml")
        parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 — a gateway serves the network
        parser.add_argument("--port", type=int, default=4000)
        parser.add_argument("--workers", type=int, default=int(os.environ.get("TOLLGATE_WORKERS", "2")))
        parser.add_argument("--no-migrate", action="store_true", help="Skip applying migrations.")
        parser.add_argument(
            "--quickstart",
            action="store_true",
            help="Print the master key in the start-up banner (only for the example config of `make run`).",
        )

    def handle(self, *args, **options) -> None:
        if not options["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
        master_key = settings.TOLLGATE_MASTER_KEY
        if options["config"]:
            config = load_file(options["config"], self.stdout, self.stderr, self.style)
            master_key = master_key or config.master_key
        if not master_key:
            self.stderr.write(
                self.style.WARNING(
                    "No master key: set general_settings.master_key or TOLLGATE_MASTER_KEY. "
                    "Until then every API request is refused with 401."
                )
            )
        admin_user = self._ensure_admin(master_key)
        self._banner(options, master_key, admin_user)
        self._serve(options)

    def _ensure_admin(self, master_key: str) -> str:
        """Create the first admin login, as LiteLLM does: UI_USERNAME / UI_PASSWORD, else the master key."""
        users = get_user_model().objects
        existing = users.filter(is_superuser=True).order_by("id").values_list("username", flat=True).first()
        if existing:
            return existing
        username = os.environ.get("UI_USERNAME", "admin")
        password = os.environ.get("UI_PASSWORD") or master_key
        if password.startswith("os.environ/"):
            password = os.environ.get(password.removeprefix("os.environ/"), "")
        if not password:
            return ""
        users.create_superuser(username=username, email="", password=password)
        return username

    def _banner(self, options: dict, master_key: str, admin_user: str) -> None:
        host = "localhost" if options["host"] in ("0.0.0.0", "::") else options["host"]  # noqa: S104
        url = f"http://{host}:{options['port']}"
        key = master_key if options["quickstart"] and master_key else "$TOLLGATE_MASTER_KEY"
        model = router_first_alias() or "MODEL"
        password = master_key if options["quickstart"] else "UI_PASSWORD, else the master key"
        lines = [
            "",
            f"  Tollgate is starting on {url}",
            f"  API:    {url}/v1   (OpenAI SDK base_url; Mistral SDK server_url/endpoint: {url})",
            f"  Admin:  {url}/admin/   user '{admin_user or 'none yet: run manage.py createsuperuser'}'"
            + (f", password {password}" if admin_user else ""),
            "  Try it:",
            f"    curl {url}/v1/chat/completions -H 'Authorization: Bearer {key}' \\",
            f'      -H \'Content-Type: application/json\' -d \'{{"model": "{model}", '
            f'"messages": [{{"role": "user", "content": "Hello"}}]}}\'',
            "",
        ]
        self.stdout.write("\n".join(lines))

    def _serve(self, options: dict) -> None:
        gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which("gunicorn")
        if gunicorn is None:
            raise SystemExit("gunicorn is not installed in this environment")
        config = Path(settings.BASE_DIR) / "config" / "gunicorn.py"
        argv = [
            gunicorn,
            "--config",
            str(config),
            "--pythonpath",
            str(settings.BASE_DIR),
            "--bind",
            f"{options['host']}:{options['port']}",
            "--workers",
            str(options["workers"]),
        ]
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
        self.stdout.write(f"Serving on http://{options['host']}:{options['port']} with {options['workers']} workers.")
        sys.stdout.flush()
        os.execv(gunicorn, argv)  # noqa: S606 — replace this process; no shell involved
