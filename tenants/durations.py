"""LiteLLM's duration strings, and when a budget period ends.

`expires` is exactly now + duration. Budget periods snap to clean boundaries in UTC, as LiteLLM
does (docs/litellm-management-api.md §4): `1d` resets at the next midnight, `7d`/`1w` next
Monday 00:00, `30d` and `1mo` the 1st of next month 00:00, other `Nd` at today 00:00 + N days,
and `Ns`/`Nm`/`Nh` at the next wall-clock multiple of N.
"""

import re
from datetime import datetime, timedelta

_DURATION = re.compile(r"^(\d+)(mo|s|m|h|d|w)$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: str) -> tuple[int, str]:
    """Return (count, unit) for `30s`, `15m`, `1h`, `7d`, `2w`, `1mo`; raise ValueError otherwise."""
    match = _DURATION.match(value.strip())
    if not match:
        raise ValueError(f"'{value}' is not a duration: write a number and a unit, e.g. 30s, 15m, 1h, 7d, 2w, 1mo")
    count, unit = int(match.group(1)), match.group(2)
    if unit == "mo" and count != 1:
        raise ValueError(f"'{value}': only 1mo is supported as a month period; use days (e.g. 60d)")
    return count, unit


def delta(value: str) -> timedelta:
    """The length of a duration; `1mo` counts as 30 days (for expiries)."""
    count, unit = parse_duration(value)
    return timedelta(days=30) if unit == "mo" else timedelta(seconds=count * UNIT_SECONDS[unit])


def expiry(value: str | None, now: datetime) -> datetime | None:
    """When a key made now with this `duration` expires; None (or "-1") never."""
    if not value or value == "-1":
        return None
    return now + delta(value)


def next_reset(value: str, now: datetime) -> datetime:
    """When a budget period of `value` that is running at `now` ends (UTC boundaries)."""
    count, unit = parse_duration(value)
    if count == 0:
        return now
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "mo" or (unit == "d" and count == 30):
        return _first_of_next_month(midnight)
    if (unit == "d" and count == 7) or (unit == "w" and count == 1):
        return midnight + timedelta(days=7 - midnight.weekday())
    if unit in ("d", "w"):
        return midnight + timedelta(days=count * (7 if unit == "w" else 1))
    step = count * UNIT_SECONDS[unit]
    since_midnight = (now - midnight).total_seconds()
    return midnight + timedelta(seconds=(int(since_midnight // step) + 1) * step)


def _first_of_next_month(midnight: datetime) -> datetime:
    year, month = (midnight.year + 1, 1) if midnight.month == 12 else (midnight.year, midnight.month + 1)
    return midnight.replace(year=year, month=month, day=1)
