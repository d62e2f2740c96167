"""Periodic tenants jobs (STYLE.md §7: each takes ids or nothing and calls one domain function)."""

from celery import shared_task

from tenants import budgets


@shared_task
def reset_budgets() -> int:
    """Start new budget periods that are due; returns how many rows were reset.

    Usage rows not yet counted into spend are counted first, so a period's spend is complete
    when it is zeroed, rather than spilling into the next period.
    """
    from billing import rollup

    rollup.run()
    return budgets.reset_due()
