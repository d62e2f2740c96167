"""botocore's exceptions → Tollgate's domain exceptions, which proxy/errors.py turns into HTTP.

AWS names each failure (`x-amzn-ErrorType`, or `:exception-type` in a stream); the name decides
the status a caller sees. Credential failures never repeat AWS's message: it can name the
account, the user's ARN or the key id. The caller gets a fixed sentence naming the problem.
"""

import contextlib
import logging
from collections.abc import Iterator

from botocore import exceptions as boto
from urllib3 import exceptions as urllib3_errors

from proxy.exceptions import ProviderMisconfigured, ProxyError, UpstreamError, UpstreamTimeout, UpstreamUnavailable

log = logging.getLogger(__name__)

PROVIDER = "bedrock"

# What each credential failure means, in words that reveal nothing of the credentials.
CREDENTIAL_PROBLEMS = {
    "UnrecognizedClientException": "AWS does not recognise the deployment's access key id or session token",
    "InvalidClientTokenId": "AWS does not recognise the deployment's access key id",
    "InvalidSignatureException": "the deployment's secret access key does not match its access key id",
    "SignatureDoesNotMatch": "the deployment's secret access key does not match its access key id",
    "IncompleteSignature": "the request signature was incomplete (check the deployment's AWS credentials)",
    "MissingAuthenticationTokenException": "no AWS credentials were sent",
    "ExpiredTokenException": "the deployment's AWS session token has expired",
    "AccessDeniedException": (
        "the deployment's AWS identity may not call this model: check its IAM policy "
        "(bedrock:InvokeModel / InvokeModelWithResponseStream) and the model access granted in the Bedrock console"
    ),
    "AccessDenied": "the deployment's AWS identity may not assume the configured role (aws_role_name)",
}
# Status per AWS error name; anything unlisted is the provider's fault (502).
STATUS = {
    "ValidationException": 400,
    "ResourceNotFoundException": 404,
    "ThrottlingException": 429,
    "ServiceQuotaExceededException": 429,
    "TooManyRequestsException": 429,
    "ModelNotReadyException": 503,
    "ServiceUnavailableException": 503,
}
TIMEOUTS = {"ModelTimeoutException", "RequestTimeout", "RequestTimeoutException"}


@contextlib.contextmanager
def translated(model: str) -> Iterator[None]:
    """Run a Bedrock call (or a stream's iteration), raising domain exceptions instead of botocore's."""
    try:
        yield
    except ProxyError:
        raise
    except Exception as e:
        translation = translate(e, model=model)
        if translation is None:
            raise
        raise translation from None


def translate(exc: Exception, *, model: str) -> ProxyError | None:
    """Return the domain exception for a botocore (or urllib3) failure; None for anything else."""
    if isinstance(exc, boto.ClientError):
        return _client_error(exc, model)
    if isinstance(exc, boto.ReadTimeoutError | urllib3_errors.ReadTimeoutError | boto.ConnectTimeoutError):
        return UpstreamTimeout("Bedrock did not answer in time", code="upstream_timeout")
    if isinstance(exc, boto.EndpointConnectionError):
        return UpstreamUnavailable("Bedrock's endpoint could not be reached", code="upstream_unreachable")
    if isinstance(exc, boto.ConnectionClosedError | urllib3_errors.ProtocolError | boto.HTTPClientError):
        return UpstreamUnavailable(
            f"the connection to Bedrock failed: {type(exc).__name__}", code="upstream_stream_broken"
        )
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return ProviderMisconfigured(
            "no usable AWS credentials for this deployment: set aws_access_key_id and aws_secret_access_key, "
            "aws_profile_name, or provide credentials to boto3's default chain",
            code="provider_misconfigured",
        )
    if isinstance(exc, boto.NoRegionError):
        return ProviderMisconfigured(
            "no AWS region for this deployment: set aws_region_name (or AWS_REGION_NAME / AWS_DEFAULT_REGION)",
            code="provider_misconfigured",
        )
    if isinstance(exc, boto.ProfileNotFound):
        return ProviderMisconfigured(f"the AWS profile {exc.kwargs.get('profile')!r} is not configured")
    if isinstance(exc, boto.BotoCoreError):
        return UpstreamUnavailable(f"the Bedrock call failed: {type(exc).__name__}", code="upstream_error")
    return None


def _client_error(exc: boto.ClientError, model: str) -> ProxyError:
    error = exc.response.get("Error") or {}
    name = _pascal(str(error.get("Code") or "UnknownError"))
    message = str(error.get("Message") or error.get("message") or "")
    if name in CREDENTIAL_PROBLEMS:
        log.warning("bedrock refused the credentials of model %s: %s", model, name)
        return UpstreamError(
            f"{CREDENTIAL_PROBLEMS[name]} ({name})", status=403, provider=PROVIDER, code="upstream_auth_error"
        )
    if name in TIMEOUTS:
        return UpstreamTimeout(f"Bedrock's model did not answer in time ({name})", code="upstream_timeout")
    status = STATUS.get(name, 502)
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return UpstreamError(
        f"{name}: {message}" if message else name,
        status=status,
        provider=PROVIDER,
        retry_after=headers.get("retry-after"),
        code=_snake(name),
    )


def _pascal(name: str) -> str:
    """Stream exceptions arrive camelCased (`throttlingException`); HTTP errors PascalCased."""
    return name[:1].upper() + name[1:]


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
