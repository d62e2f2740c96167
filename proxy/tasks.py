"""Periodic jobs of the proxy app, listed in config/celery.py's beat schedule."""

from celery import shared_task

from proxy import health


@shared_task
def background_health_checks() -> int | None:
    """Probe every deployment and feed the router when the config asks for it and a round is due."""
    return health.run_in_background()
