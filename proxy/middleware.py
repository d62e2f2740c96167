"""Give every request an id, returned as `x-request-id` and written in every log line about it."""

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# A caller's own id is kept when it is short and plain, so it can be traced end to end.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        request.request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["x-request-id"] = request.request_id  # type: ignore[attr-defined]
        return response
