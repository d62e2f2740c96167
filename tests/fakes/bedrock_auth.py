"""What the fake Bedrock checks before it answers: a valid SigV4 signature, and STS AssumeRole.

The signature is recomputed with botocore's own SigV4 code from what came over the wire: the
method, the raw (still percent-encoded) path, the body and only the headers the client says it
signed. A wrong secret, a tampered body, a wrong service or an unknown key fails as on AWS.
"""

from __future__ import annotations

import datetime
import hmac
import re
import secrets
import string
import threading
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[^,]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)


@dataclass(frozen=True)
class Key:
    secret: str
    token: str | None = None


class AuthError(Exception):
    """Refused: `error_type` is what AWS puts in x-amzn-ErrorType."""

    def __init__(self, error_type: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status


class Keys:
    """The access keys the fake accepts: the test's long-term key and the temporary ones STS issued."""

    def __init__(self) -> None:
        self._keys: dict[str, Key] = {}
        self._lock = threading.Lock()

    def add(self, key_id: str, secret: str, token: str | None = None) -> None:
        with self._lock:
            self._keys[key_id] = Key(secret, token)

    def get(self, key_id: str) -> Key | None:
        with self._lock:
            return self._keys.get(key_id)

    def issue(self) -> tuple[str, Key]:
        key_id = "ASIA" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))
        key = Key(secrets.token_urlsafe(30), secrets.token_urlsafe(60))
        with self._lock:
            self._keys[key_id] = key
        return key_id, key


def verify(
    keys: Keys, *, method: str, host: str, raw_path: str, headers: dict[str, str], body: bytes, service: str
) -> str:
    """Check the request's SigV4 signature; return the access key id that signed it, or raise AuthError."""
    match = AUTHORIZATION.fullmatch(headers.get("authorization", ""))
    if not match:
        raise AuthError("MissingAuthenticationTokenException", "Missing Authentication Token")
    key = keys.get(match["key"])
    if key is None:
        raise AuthError("UnrecognizedClientException", "The security token included in the request is invalid.")
    if match["service"] != service:
        raise AuthError("InvalidSignatureException", f"Credential should be scoped to correct service: '{service}'.")
    if key.token is not None and headers.get("x-amz-security-token") != key.token:
        raise AuthError("UnrecognizedClientException", "The security token included in the request is invalid.")
    signed = match["signed"].split(";")
    request = AWSRequest(
        method=method, url=f"http://{host}{raw_path}", data=body, headers={h: headers.get(h, "") for h in signed}
    )
    request.context["timestamp"] = headers.get("x-amz-date", "")
    signer = SigV4Auth(Credentials(match["key"], key.secret, key.token), match["service"], match["region"])
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, match["signature"]):
        raise AuthError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )
    return match["key"]


def assume_role(keys: Keys, body: bytes, *, lifetime: datetime.timedelta) -> tuple[dict[str, str], bytes]:
    """Answer an STS AssumeRole (query protocol, XML answer); return the call's parameters and the body."""
    params = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    if params.get("Action") != "AssumeRole":
        raise AuthError("InvalidAction", f"Could not find operation {params.get('Action')}", status=400)
    key_id, key = keys.issue()
    expires = (datetime.datetime.now(datetime.UTC) + lifetime).strftime("%Y-%m-%dT%H:%M:%SZ")
    role = params.get("RoleArn", "")
    session = params.get("RoleSessionName", "")
    xml = f"""<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>{key_id}</AccessKeyId>
      <SecretAccessKey>{key.secret}</SecretAccessKey>
      <SessionToken>{key.token}</SessionToken>
      <Expiration>{expires}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROATOLLGATETEST:{session}</AssumedRoleId>
      <Arn>{role.replace(":iam:", ":sts:").replace(":role/", ":assumed-role/")}/{session}</Arn>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>
</AssumeRoleResponse>
"""
    return params, xml.encode()


def error_xml(error: AuthError) -> bytes:
    """STS's (query protocol) error body."""
    return (
        f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        f"<Code>{error.error_type}</Code><Message>{error.message}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()
