"""What every usage page shows for one scope: range, totals, charts, breakdowns, recent requests.

Shared by the staff dashboard and the team portal, so both draw the same figures the same way;
only the surrounding page (and where names link to) differs.
"""

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest

from billing import charts
from billing.charts import Series
from billing.dashboard import stats
from tenants.models import Team, VirtualKey

PAGE_SIZE = 25
NAMERS = {"team_id": stats.name_teams, "key_hash": stats.name_keys, "user_id": stats.name_users}
TITLES = {"team_id": "By team", "model": "By model", "key_hash": "By key", "user_id": "Top spenders"}


def context(request: HttpRequest, scope: stats.Scope, *, breakdowns: tuple[str, ...]) -> dict[str, Any]:
    """The template context of a usage section: `?range=` picks the window, `?page=` the table page."""
    win = stats.window(request.GET.get("range"))
    line = stats.timeline(win, scope)
    by = []
    for column in breakdowns:
        rows = stats.breakdown(win, scope, column)
        rows = NAMERS[column](rows) if column in NAMERS else [{**r, "label": r[column] or "(none)"} for r in rows]
        title = TITLES[column]
        # Bars show spend; where nothing cost anything (mock or free models), they show requests.
        if any(r["spend"] for r in rows):
            chart = charts.bar_chart(
                [(r["label"], r["spend"] or 0) for r in rows], title=f"{title}: spend", fmt=charts.usd
            )
        else:
            chart = charts.bar_chart([(r["label"], r["requests"] or 0) for r in rows], title=f"{title}: requests")
        by.append({"column": column, "title": title, "rows": rows, "chart": chart})
    page = Paginator(stats.recent(win, scope), PAGE_SIZE).get_page(request.GET.get("page"))
    _label(page.object_list)
    return {
        "window": win,
        "ranges": list(stats.RANGES),
        "totals": stats.totals(line),
        "latency": stats.latency(win, scope),
        "spend_chart": charts.line_chart(
            line.labels, [Series("Spend", line.spend)], title="Spend over time", fmt=charts.usd
        ),
        "requests_chart": charts.line_chart(
            line.labels,
            [Series("Requests", line.requests), Series("Errors", line.errors)],
            title="Requests and errors over time",
        ),
        "breakdowns": by,
        "page": page,
        "table_rows": stats.TABLE_ROWS,
    }


def _label(records) -> None:
    """Give the page's rows their team's name and their key's row id, in two queries."""
    records = list(records)
    teams = dict(
        Team.objects.filter(team_id__in={r.team_id for r in records if r.team_id}).values_list("team_id", "team_alias")
    )
    keys = dict(VirtualKey.objects.filter(token__in={r.key_hash for r in records}).values_list("token", "pk"))
    for record in records:
        record.team_label = teams.get(record.team_id) or record.team_id
        record.key_pk = keys.get(record.key_hash)
