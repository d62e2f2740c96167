"""Microsoft Entra ID (Azure AD) access tokens for Azure OpenAI: the client-credentials flow, cached.

A deployment configured with `tenant_id` / `client_id` / `client_secret` calls Azure with a bearer
token minted by the tenant's token endpoint. A token lives about an hour; asking for one per call
would add a round trip to every request and run into Entra's throttling, so each worker keeps the
token until REFRESH_MARGIN before it expires. One lock per set of credentials lets only one
(green) thread fetch while the others wait for its token.

The authority is configurable as in the Azure SDKs (`azure_authority_host`, else the
AZURE_AUTHORITY_HOST variable, else the public cloud): sovereign clouds use their own, and tests
point it at a fake on 127.0.0.1. Errors name Entra's error code only: its descriptions can name
the application and the tenant.
"""

import re
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import orjson

from proxy import http
from proxy.exceptions import UpstreamError

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
SCOPE = "https://cognitiveservices.azure.com/.default"
REFRESH_MARGIN = 300.0  # seconds before expiry a cached token is replaced
AADSTS = re.compile(r"AADSTS\d+")


@dataclass(frozen=True)
class ClientCredentials:
    """An app registration's client credentials; equal ones share one cached token. The secret never prints."""

    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    authority: str = DEFAULT_AUTHORITY
    scope: str = SCOPE

    @property
    def token_url(self) -> str:
        return f"{self.authority.rstrip('/')}/{self.tenant_id}/oauth2/v2.0/token"


@dataclass
class _Cached:
    token: str
    expires_at: float  # time.time()


_tokens: dict[ClientCredentials, _Cached] = {}
_locks: dict[ClientCredentials, threading.Lock] = {}
_locks_lock = threading.Lock()


def token(credentials: ClientCredentials, *, timeout: float) -> str:
    """Return a current access token for `credentials`, fetching one when none is cached or it expires soon."""
    cached = _tokens.get(credentials)
    if cached is not None and _fresh(cached):
        return cached.token
    with _lock(credentials):
        cached = _tokens.get(credentials)  # another thread may have fetched it while this one waited
        if cached is not None and _fresh(cached):
            return cached.token
        cached = _tokens[credentials] = fetch(credentials, timeout=timeout)
        return cached.token


def forget() -> None:
    """Drop every cached token (tests; a rotated secret is a new cache key anyway)."""
    with _locks_lock:
        _tokens.clear()
        _locks.clear()


def fetch(credentials: ClientCredentials, *, timeout: float) -> _Cached:
    """Ask the token endpoint for a token (OAuth 2.0 client credentials grant)."""
    form = urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
            "scope": credentials.scope,
        }
    ).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    started = time.time()
    response = http.post(credentials.token_url, form, headers, timeout=timeout)
    try:
        answer = orjson.loads(response.data)
    except orjson.JSONDecodeError:
        answer = None
    if response.status >= 400 or not isinstance(answer, dict) or not answer.get("access_token"):
        raise refused(response.status, answer)
    return _Cached(str(answer["access_token"]), started + float(answer.get("expires_in") or 0))


def refused(status: int, answer: object) -> UpstreamError:
    """The error for a token request Entra refused: its error code and AADSTS number, nothing else."""
    error = answer if isinstance(answer, dict) else {}
    code = str(error.get("error") or "no token")
    found = AADSTS.search(str(error.get("error_description") or ""))
    detail = f"{code}, {found.group()}" if found else code
    # 400/401 mean the credentials (or tenant) are wrong: reported as the deployment's auth problem.
    return UpstreamError(
        f"Entra ID did not issue a token for the client credentials ({detail}); "
        "check tenant_id, client_id and client_secret",
        status=401 if status < 500 else status,
        provider="azure",
    )


def _fresh(cached: _Cached) -> bool:
    return cached.expires_at - REFRESH_MARGIN > time.time()


def _lock(credentials: ClientCredentials) -> threading.Lock:
    with _locks_lock:
        return _locks.setdefault(credentials, threading.Lock())
