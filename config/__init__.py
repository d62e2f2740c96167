"""Load the Celery app with Django, so `@shared_task`s bind to it (its broker and eager mode)."""

from config.celery import app as celery_app

__all__ = ["celery_app"]
