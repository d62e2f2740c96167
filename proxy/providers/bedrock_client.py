"""boto3 `bedrock-runtime` clients: one per distinct set of settings, created once per worker process.

A boto3 client is thread-safe (and green-thread-safe: botocore speaks HTTP through urllib3, which
gevent patches) and owns a connection pool, so every request to a deployment shares one client
instead of paying for a new session, endpoint resolution and TLS handshake each time. The cache
key is the resolved settings, secrets included, so an edited deployment or a rotated environment
variable gets a fresh client while an unchanged one keeps its warm connections.

Credentials, most specific first: the deployment's `aws_access_key_id` / `aws_secret_access_key`
(/ `aws_session_token`), else `aws_profile_name`, else boto3's default chain (environment, shared
files, container or instance roles). With `aws_role_name`, those are only the source for an STS
AssumeRole whose temporary credentials botocore refreshes before they expire.
"""

import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, RefreshableCredentials

SERVICE = "bedrock-runtime"


@dataclass(frozen=True)
class ClientSettings:
    """Everything a client is built from; equal settings share one client. Secrets never print."""

    region: str | None
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    role_arn: str | None = None
    session_name: str = "tollgate"
    sts_endpoint_url: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    pool_size: int = 10


_clients: dict[ClientSettings, Any] = {}
_loader = botocore.loaders.create_loader()
_lock = threading.Lock()


def client(settings: ClientSettings) -> Any:
    """Return the shared client for `settings`, creating it on first use."""
    found = _clients.get(settings)
    if found is not None:
        return found
    with _lock:  # building a client reads files and endpoint rules: once, not per racing request
        found = _clients.get(settings)
        if found is None:
            found = _clients[settings] = _create(settings)
        return found


def forget() -> None:
    """Drop every cached client (tests change the environment the default chain reads)."""
    with _lock:
        _clients.clear()


def _create(settings: ClientSettings) -> Any:
    session = _source_session(settings)
    if settings.role_arn:
        session = _assumed_role_session(session, settings)
    config = Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        # Retries are the router's decision, never the transport's (as in proxy/http.py).
        retries={"total_max_attempts": 1, "mode": "standard"},
        # botocore's default pool is 10; a gevent worker runs hundreds of calls at once.
        max_pool_connections=settings.pool_size,
        tcp_keepalive=True,
    )
    return session.client(SERVICE, region_name=settings.region, endpoint_url=settings.endpoint_url, config=config)


def _core_session() -> botocore.session.Session:
    """A botocore session sharing the process's one loader: the service model is parsed once, not per client."""
    core = botocore.session.Session()
    core.register_component("data_loader", _loader)
    return core


def _source_session(settings: ClientSettings) -> boto3.Session:
    """The session whose credentials sign requests (or, with a role, sign the AssumeRole call)."""
    if settings.access_key_id or settings.secret_access_key:
        return boto3.Session(
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key,
            aws_session_token=settings.session_token,
            region_name=settings.region,
            botocore_session=_core_session(),
        )
    return boto3.Session(profile_name=settings.profile, region_name=settings.region, botocore_session=_core_session())


class _AssumedRole(CredentialProvider):
    """Temporary credentials from STS AssumeRole, fetched again before they expire.

    RefreshableCredentials asks for new ones 15 minutes before expiry (and insists 10 minutes
    before), so a long-running worker never signs with credentials that have run out.
    """

    METHOD = "tollgate-assume-role"
    CANONICAL_NAME = "TollgateAssumeRole"

    def __init__(self, source: boto3.Session, settings: ClientSettings) -> None:
        super().__init__()
        self._source = source
        self._settings = settings
        self._sts: Any = None

    def load(self) -> RefreshableCredentials:
        return RefreshableCredentials.create_from_metadata(self._fetch(), refresh_using=self._fetch, method=self.METHOD)

    def _fetch(self) -> dict[str, str]:
        if self._sts is None:
            self._sts = self._source.client(
                "sts",
                region_name=self._settings.region,
                endpoint_url=self._settings.sts_endpoint_url,  # None: AWS_ENDPOINT_URL_STS, else the regional STS
                config=Config(connect_timeout=self._settings.connect_timeout, read_timeout=30),
            )
        answer = self._sts.assume_role(RoleArn=self._settings.role_arn, RoleSessionName=self._settings.session_name)
        issued = answer["Credentials"]
        return {
            "access_key": issued["AccessKeyId"],
            "secret_key": issued["SecretAccessKey"],
            "token": issued["SessionToken"],
            "expiry_time": issued["Expiration"].isoformat(),
        }


def _assumed_role_session(source: boto3.Session, settings: ClientSettings) -> boto3.Session:
    """A session signing with the role's credentials; the source session only calls STS."""
    core = _core_session()
    core.get_component("credential_provider").insert_before("env", _AssumedRole(source, settings))
    return boto3.Session(botocore_session=core, region_name=settings.region)
