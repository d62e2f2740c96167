"""The Celery app. Without REDIS_URL, tasks run in-process (CELERY_TASK_ALWAYS_EAGER)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("tollgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# One beat schedule lists every periodic job; billing adds its rollups here.
app.conf.beat_schedule = {
    # Budget periods end on exact UTC boundaries (tenants/durations.py); until this runs, the old
    # period's spend still counts. The shortest supported period is 30s, so every 10 s keeps a
    # reset at most ~10 s late (a third of the shortest period) while a run with nothing due is
    # one query per table. Runs are idempotent and safe to overlap (tenants/budgets.py).
    "reset-budgets": {"task": "tenants.tasks.reset_budgets", "schedule": 10.0},
}
