"""Periodic billing jobs (STYLE.md §7: each takes ids or nothing and calls one domain function)."""

from celery import shared_task

from billing import rollup
from tenants import budgets


@shared_task
def rollup_usage() -> int:
    """Count new usage rows into spend totals and the daily table; returns how many rows."""
    return rollup.run()


@shared_task
def purge_usage() -> int:
    """Delete usage rows past the retention period (already counted); returns how many."""
    return rollup.purge()


@shared_task
def reset_budgets() -> int:
    """Start new budget periods that are due; returns how many rows were reset.

    Usage rows not yet counted into spend are counted first, so a period's spend is complete
    when it is zeroed, rather than spilling into the next period.
    """
    rollup.run()
    return budgets.reset_due()
