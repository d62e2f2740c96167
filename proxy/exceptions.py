"""What can go wrong on the proxy path, in domain terms. proxy/errors.py maps these to HTTP."""


class ProxyError(Exception):
    """Base for errors a caller should see; `param` and `code` fill the OpenAI error envelope."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidRequest(ProxyError):
    """The request body is malformed or has a field of the wrong type."""


class BodyTooLarge(ProxyError):
    """The request body is larger than TOLLGATE_MAX_REQUEST_BYTES."""


class UnknownModel(ProxyError):
    """No enabled deployment serves the requested alias."""


class UnsupportedOperation(ProxyError):
    """The deployment's provider cannot do what was asked (e.g. FIM on a chat-only provider)."""


class ProviderMisconfigured(ProxyError):
    """The deployment cannot be called as configured: a missing secret, an unknown provider."""


class UpstreamError(ProxyError):
    """The provider answered with an error status; `status` and the provider's message are kept."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        provider: str,
        retry_after: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, code=code, param=param)
        self.status = status
        self.provider = provider
        self.retry_after = retry_after


class UpstreamTimeout(ProxyError):
    """The provider did not answer (or send the next stream chunk) in time."""


class UpstreamUnavailable(ProxyError):
    """The provider could not be reached, or the connection broke mid-answer."""


class NoDeploymentAvailable(ProxyError):
    """Every deployment of the group is cooling down or at its rpm/tpm limit; `retry_after` seconds."""

    retry_after: int = 1
