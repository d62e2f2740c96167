"""Refusals decided by tenants; proxy/errors.py gives them their HTTP status."""


class TenantError(Exception):
    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class AuthenticationFailed(TenantError):
    """No key, an unknown key, or a blocked or expired one."""


class ModelNotAllowed(TenantError):
    """The key may not use the requested model."""
