"""Periodic billing jobs (STYLE.md §7: each takes ids or nothing and calls one domain function)."""

from celery import shared_task

from billing import rollup


@shared_task
def rollup_usage() -> int:
    """Count new usage rows into spend totals and the daily table; returns how many rows."""
    return rollup.run()


@shared_task
def purge_usage() -> int:
    """Delete usage rows past the retention period (already counted); returns how many."""
    return rollup.purge()
