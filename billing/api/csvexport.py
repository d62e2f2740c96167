"""CSV export for every spend route: `?format=csv` or `Accept: text/csv`, streamed row by row.

DRF's content negotiation picks the format (its `format` query parameter and the Accept header),
so the CSV renderer below exists to be *chosen*; the view then streams the rows itself, so an
export of a year of usage never sits in memory. Errors always come back as the JSON envelope,
whatever was asked for: a client must be able to read why its export failed.
"""

import csv
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from django.http import StreamingHttpResponse
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from tenants.api.common import ManagementView


class CSVRenderer(BaseRenderer):
    """Lets negotiation select CSV; the rows themselves are streamed by `stream`."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        # Reached only by a view that answers a Response while CSV was asked for; show it as JSON
        # text rather than fail (SpendView sends errors as JSON before they get here).
        return JSONRenderer().render(data)


class SpendView(ManagementView):
    """A read-only spend route: JSON by default, CSV on request."""

    renderer_classes = [JSONRenderer, CSVRenderer]

    def wants_csv(self) -> bool:
        return (
            getattr(self.request, "accepted_renderer", None) is not None
            and self.request.accepted_renderer.format == "csv"
        )

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        # The error envelope is JSON even when CSV was asked for.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a generator."""

    def write(self, value: str) -> str:
        return value


def stream(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> StreamingHttpResponse:
    """A CSV download: the header row, then `rows`, encoded as they are produced."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def cell(value: Any) -> Any:
    """Spreadsheet-safe cells: no formula injection from text a caller controlled (end-user ids)."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # exact, without the column's trailing zeros
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
