"""What every management-API view shares: key authentication, roles, and LiteLLM-style inputs.

The management API is RPC-shaped like LiteLLM's (`POST /key/generate`), so each operation is
one DRF view that validates its input with a serializer and calls one domain function. Errors
come out in the proxy's envelope (proxy/errors.py via REST_FRAMEWORK's EXCEPTION_HANDLER) with
the status of DESIGN.md §5: 400 bad input naming the field, 401 bad key, 403 wrong role,
404 unknown or another team's object (nothing about it leaks).
"""

from typing import Any, NoReturn

from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from tenants import audit, auth
from tenants.auth import Caller
from tenants.durations import parse_duration


class VirtualKeyAuthentication(BaseAuthentication):
    """The same keys as the LLM API: master key or virtual key, from the same three headers."""

    def authenticate(self, request: Request) -> tuple[Caller, Caller]:
        caller = auth.authenticate(request._request)
        return caller, caller

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="tollgate"'


class IsProxyAdmin(BasePermission):
    message = "Only the master key or a proxy_admin user's key may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, Caller) and request.auth.is_admin


class ManagementView(APIView):
    """Base of every management route: key auth; subclasses pick the permission."""

    authentication_classes = [VirtualKeyAuthentication]
    permission_classes: list = []
    # JSON only, as LiteLLM's API: a form-encoded body would read a missing boolean as false.
    parser_classes = [JSONParser]

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        # Every change made while handling the call is recorded as the caller's (tenants/audit.py).
        with audit.recording(request):
            return super().dispatch(request, *args, **kwargs)

    @property
    def caller(self) -> Caller:
        return self.request.auth  # type: ignore[return-value]

    def permission_denied(self, request: Request, message: str | None = None, code: str | None = None) -> NoReturn:
        raise exceptions.PermissionDenied(detail=message or "You may not do this.", code=code or "forbidden")


class DurationField(serializers.CharField):
    """LiteLLM's duration strings (`30s`, `15m`, `1h`, `7d`, `2w`, `1mo`), checked on input."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        try:
            parse_duration(value)
        except ValueError as e:
            raise serializers.ValidationError(str(e)) from None
        return value


class MoneyField(serializers.DecimalField):
    """USD amounts: non-negative, 10 decimal places, null allowed."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(max_digits=20, decimal_places=10, min_value=0, **kwargs)
