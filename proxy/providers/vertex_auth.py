"""OAuth access tokens for Vertex AI, minted from a service account with google-auth.

google-auth signs a JWT with the service account's private key and trades it at the account's
`token_uri` for an access token of about an hour. One Credentials object per service account
lives for the life of the worker process, so a token is minted once and shared by every request
until it goes stale (google-auth calls a token stale 3 min 45 s before it expires).

Refreshing stays off the hot path's way: a fresh token is read without a lock; a stale one is
refreshed by one request while the others keep using it (it is still valid); only an expired or
missing token makes requests wait, and then only those of that one service account. The lock
is `threading.Lock`, which gevent's monkey-patching makes a green lock, and the token request
goes through urllib3 (gevent-patched sockets), so a refresh never blocks the worker's other
green threads.
"""

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

import google.auth
import google.auth.transport.urllib3
from google.auth import exceptions as google_errors
from google.auth.credentials import Credentials, TokenState
from google.oauth2 import service_account

from proxy import http
from proxy.exceptions import ProviderMisconfigured, UpstreamError, UpstreamUnavailable

log = logging.getLogger(__name__)

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
TOKEN_TIMEOUT = 30.0  # seconds for the token endpoint to answer
PROVIDER = "vertex_ai"


class MisconfiguredCredentials(ProviderMisconfigured):
    """vertex_credentials cannot be read as a service account; the message never holds its contents."""


def service_account_info(value: str) -> dict[str, Any]:
    """Read vertex_credentials: a service-account JSON document, or the path of a file holding one."""
    text = value.strip()
    if not text.startswith("{"):
        try:
            text = Path(text).expanduser().read_text()
        except OSError as e:
            raise MisconfiguredCredentials(
                f"vertex_credentials is neither a JSON document nor a readable file ({type(e).__name__})",
                code="provider_misconfigured",
            ) from None
    try:
        info = json.loads(text)
    except ValueError:
        raise MisconfiguredCredentials("vertex_credentials is not valid JSON", code="provider_misconfigured") from None
    if not isinstance(info, dict):
        raise MisconfiguredCredentials("vertex_credentials must be a JSON object", code="provider_misconfigured")
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if info.get("type", "service_account") != "service_account" or missing:
        raise MisconfiguredCredentials(
            "vertex_credentials must be a service-account key (type service_account"
            + (f"; missing {', '.join(missing)})" if missing else ")"),
            code="provider_misconfigured",
        )
    return info


class TokenSource:
    """One identity's credentials and its cached access token."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self._lock = threading.Lock()
        self._request = _Request(http.pool())

    def token(self) -> str:
        """Return a valid access token, minting a new one only when the cached one is stale or gone."""
        credentials = self.credentials
        state = credentials.token_state
        if state == TokenState.FRESH:
            return str(credentials.token)
        if state == TokenState.STALE and not self._lock.acquire(blocking=False):
            return str(credentials.token)  # another request is refreshing it; this one is still valid
        if state != TokenState.STALE:
            self._lock.acquire()
        try:
            if credentials.token_state != TokenState.FRESH:
                self._refresh(stale=credentials.token_state == TokenState.STALE)
            return str(credentials.token)
        finally:
            self._lock.release()

    def _refresh(self, *, stale: bool) -> None:
        try:
            self.credentials.refresh(self._request)
        except (google_errors.RefreshError, google_errors.TransportError) as e:
            if stale:  # the old token works a few minutes more: serve with it, try again on the next call
                log.warning("vertex_ai token refresh failed, using the current token meanwhile: %s", type(e).__name__)
                return
            raise translate(e) from None


def translate(error: Exception) -> Exception:
    """Return the domain exception for a failed token request; Google's text is not repeated."""
    if isinstance(error, google_errors.TransportError):
        return UpstreamUnavailable("Google's token endpoint could not be reached", code="upstream_unreachable")
    if isinstance(error, google_errors.RefreshError):
        reason = _oauth_error(error)
        log.warning("vertex_ai token endpoint refused the service account: %s", reason)
        return UpstreamError(
            f"Google's token endpoint refused the deployment's service account ({reason}): check that the key "
            "in vertex_credentials is current and not disabled",
            status=403,
            provider=PROVIDER,
            code="upstream_auth_error",
        )
    if isinstance(error, google_errors.DefaultCredentialsError):
        return ProviderMisconfigured(
            "no Google credentials for this deployment: set vertex_credentials (a service-account JSON or its path), "
            "or GOOGLE_APPLICATION_CREDENTIALS",
            code="provider_misconfigured",
        )
    return error


def _oauth_error(error: Exception) -> str:
    """The OAuth error code (invalid_grant, ...) from a RefreshError, never its description."""
    response = error.args[1] if len(error.args) > 1 else None
    if isinstance(response, dict) and response.get("error"):
        return str(response["error"])
    text = str(error.args[0]) if error.args else ""
    return text.split(":", 1)[0].strip()[:64] or "refused"


_sources: dict[str, TokenSource] = {}
_sources_lock = threading.Lock()


def source_for(info: dict[str, Any] | None) -> TokenSource:
    """Return the process's token source for a service account (None: Application Default Credentials)."""
    key = "adc" if info is None else hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()
    found = _sources.get(key)
    if found is not None:
        return found
    with _sources_lock:
        found = _sources.get(key)
        if found is None:
            found = _sources[key] = TokenSource(_credentials(info))
        return found


def forget() -> None:
    """Drop every cached token source (tests start from no token)."""
    with _sources_lock:
        _sources.clear()


def _credentials(info: dict[str, Any] | None) -> Credentials:
    try:
        if info is None:
            credentials, _ = google.auth.default(scopes=SCOPES)
            return credentials
        return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
    except google_errors.DefaultCredentialsError as e:
        raise translate(e) from None
    except ValueError:  # a private key that does not parse
        raise MisconfiguredCredentials(
            "vertex_credentials holds a private key that cannot be read", code="provider_misconfigured"
        ) from None


class _Request(google.auth.transport.urllib3.Request):
    """google-auth's urllib3 transport on Tollgate's pool, with a bounded wait for the token endpoint."""

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):  # type: ignore[no-untyped-def]
        return super().__call__(url, method, body, headers, timeout=timeout or TOKEN_TIMEOUT, **kwargs)
