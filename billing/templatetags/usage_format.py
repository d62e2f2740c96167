"""Template filters for money, shares and durations, formatted as the charts format them."""

from decimal import Decimal

from django import template

from billing import charts

register = template.Library()


@register.filter
def usd(value: Decimal | float | None) -> str:
    return "—" if value is None else charts.usd(float(value))


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * float(value):.1f}%"


@register.filter
def ms(value: float | None) -> str:
    return "—" if value is None else charts.milliseconds(float(value))
