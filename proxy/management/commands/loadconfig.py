"""`manage.py loadconfig FILE`: load a LiteLLM config file into the database without serving."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from proxy import configfile, deployments


class Command(BaseCommand):
    help = "Load a LiteLLM-format config file (model_list, general_settings, ...) into the database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("config", help="Path to litellm_config.yaml")

    def handle(self, *args, **options) -> None:
        load_file(options["config"], self.stdout, self.stderr, self.style)


def load_file(path: str, stdout, stderr, style) -> configfile.ConfigFile:
    """Read, check and load the file; warnings to stderr, a bad file as a CommandError (exit 1)."""
    try:
        config = configfile.read(path)
    except configfile.ConfigError as e:
        raise CommandError(f"Bad config: {e}") from None
    for warning in config.warnings:
        stderr.write(style.WARNING(f"warning: {warning}"))
    counts = deployments.load(config)
    stdout.write(
        f"Loaded {path}: {len(config.deployments)} deployments "
        f"({counts['created']} new, {counts['updated']} updated, {counts['removed']} removed)."
    )
    return config
