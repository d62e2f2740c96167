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


class InvalidInput(TenantError):
    """A request the stored data refuses: a taken id, a member already in the team, an unknown team."""


class NotFound(TenantError):
    """No such object, or one the caller may not see (the two read the same, so nothing leaks)."""


class Conflict(TenantError):
    """The object already exists (LiteLLM answers 409 for a taken user id or email)."""


class NotPermitted(TenantError):
    """The caller may see the object but not do this to it (or may not do this at all)."""


class BudgetExceeded(TenantError):
    """A budget covering the key cannot take this request's worst-case cost."""


class RateLimited(TenantError):
    """An rpm, tpm or parallel-request limit covering the key is reached."""

    retry_after: int = 1
    exhausted: str = ""  # "requests" or "tokens": which x-ratelimit-remaining-* header reads 0


class UnpricedModel(TenantError):
    """The model has no price, and a budget covers the key: the budget could not hold."""
