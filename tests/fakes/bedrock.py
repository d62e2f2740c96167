"""A fake Amazon Bedrock runtime (and STS) for tests: AWS's wire format on 127.0.0.1, scripted by each test.

Tollgate's real boto3 client talks to it over HTTP; nothing in botocore is stubbed. Like AWS it
verifies each request's SigV4 signature (bedrock_auth.py) with the test secret; answers Converse,
ConverseStream (binary event-stream frames with CRCs, bedrock_eventstream.py), InvokeModel and
InvokeModelWithResponseStream in their real shapes (bedrock_answers.py); refuses what
Bedrock-Mistral refuses (tool-call ids that are not 9 alphanumeric characters, turns out of order,
blank text); and fails on demand: `error("ThrottlingException")` before the answer,
`error_mid_stream("modelStreamErrorException")` after some chunks. It also serves images over
HTTP (`image_url(...)`) and answers STS AssumeRole with temporary keys it then accepts.

    with FakeBedrock.running() as fake:
        fake.reply_stream(["Hel", "lo"], prompt_tokens=12, completion_tokens=2)
        ...  # aws_bedrock_runtime_endpoint: fake.root, the keys FakeBedrock.ACCESS_KEY_ID / SECRET_ACCESS_KEY
"""

from __future__ import annotations

import datetime
import json
import re
import struct
import time
import uuid
import zlib
from typing import Any
from urllib.parse import unquote

from . import bedrock_answers as answers
from . import bedrock_auth as auth
from . import bedrock_eventstream as eventstream
from .scripted import Recorded, ScriptedFake, _Answer, _Handler, _Script

ROUTE = re.compile(r"^/model/(?P<model>[^/]+)/(?P<op>converse|converse-stream|invoke|invoke-with-response-stream)$")
STATUS = {
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "UnrecognizedClientException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
    "ThrottlingException": 429,
    "ServiceQuotaExceededException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
    "ModelNotReadyException": 429,  # AWS sends it as a 429
}
# What boto3 reads from the environment: tests clear these so that only the fake can be reached.
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_REGION_NAME",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


def png(width: int = 2, height: int = 2, *, padding: int = 0) -> bytes:
    """A valid PNG of `width` x `height` grey pixels; `padding` bytes of a private chunk make it bigger."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    extra = chunk(b"prVt", b"\x00" * padding) if padding else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class FakeBedrock(ScriptedFake):
    """A Bedrock runtime; queue behaviours with reply / reply_stream / error / error_mid_stream / hang.

    Every Bedrock operation takes the next behaviour from one queue ("chat"): the operation decides
    the shape. With nothing queued it answers like FakeMistral: a tool call when tools are offered and
    required (or the user asks about the weather), a summary after a tool result, a description of
    any image, else "Echo: <last user text>".
    """

    ACCESS_KEY_ID = "AKIATOLLGATETEST0001"
    SECRET_ACCESS_KEY = "tollgate/test/secret+access+key/0123456789"
    REGION = "us-east-1"

    @staticmethod
    def make_tool_call(spec: dict) -> dict:
        function = spec.get("function", spec)
        arguments = function.get("arguments", {})
        return {
            "id": spec.get("id"),
            "name": function["name"],
            "input": json.loads(arguments) if isinstance(arguments, str) else arguments,
        }

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__(api_key)
        self.keys = auth.Keys()
        self.keys.add(self.ACCESS_KEY_ID, self.SECRET_ACCESS_KEY)
        self.role_lifetime = datetime.timedelta(hours=1)
        self.assumed: list[dict[str, str]] = []  # each AssumeRole call's parameters
        self.signers: list[str] = []  # the access key id that signed each Bedrock request
        self.images: dict[str, bytes] = {}

    # -- scripting beyond the shared API -------------------------------------------------------

    def error(self, error_type: str, message: str | None = None, *, status: int | None = None) -> None:
        """Fail the next call with an AWS error (`x-amzn-ErrorType` + `{"message"}`) before any answer."""
        self.fail(
            status or STATUS.get(error_type, 400),
            {"message": message or f"{error_type} from the fake Bedrock"},
            headers={"x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"},
        )

    def error_mid_stream(self, exception_type: str, *, after_chunks: int = 1, message: str | None = None) -> None:
        """Stream `after_chunks` deltas of the default answer, then an exception event (a 200 already sent)."""
        self._queue(
            "chat",
            _Script(kind="cut", after_chunks=after_chunks, body={"type": exception_type, "message": message}),
        )

    def image_url(self, name: str, data: bytes, content_type: str = "image/png") -> str:
        self.images[name] = data
        self._image_types = {**getattr(self, "_image_types", {}), name: content_type}
        return f"{self.root}/images/{name}"

    def reset(self) -> None:
        super().reset()
        self.assumed.clear()
        self.signers.clear()
        self.role_lifetime = datetime.timedelta(hours=1)

    # -- serving -------------------------------------------------------------------------------

    def _serve(self, h: _Handler) -> None:
        raw = h.read_body()
        headers = {k.lower(): v for k, v in h.headers.items()}
        path = h.path.split("?", 1)[0]  # still percent-encoded, as it was signed
        body = None
        if raw and path.startswith("/model/"):
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        self.requests.append(Recorded(h.command, unquote(path), headers, body, raw))
        if h.command == "GET" and path.startswith("/images/"):
            return self._send_image(h, path.removeprefix("/images/"))
        is_sts = path == "/" and "Action=" in raw.decode(errors="replace")
        try:
            signer = auth.verify(
                self.keys,
                method=h.command,
                host=headers.get("host", ""),
                raw_path=h.path,
                headers=headers,
                body=raw,
                service="sts" if is_sts else "bedrock",
            )
        except auth.AuthError as e:
            if is_sts:
                return _send(h, e.status, auth.error_xml(e), "text/xml")
            return h.send_json(e.status, {"message": e.message}, {"x-amzn-ErrorType": e.error_type})
        if is_sts:
            try:
                params, xml = auth.assume_role(self.keys, raw, lifetime=self.role_lifetime)
            except auth.AuthError as e:
                return _send(h, e.status, auth.error_xml(e), "text/xml")
            self.assumed.append(params)
            return _send(h, 200, xml, "text/xml")
        self.signers.append(signer)
        answer = self._answer(h, path, body, None)
        if answer is not None:
            h.send_json(*answer)

    def _answer(self, h: _Handler, path: str, body: Any, bad_json: ValueError | None) -> _Answer | None:
        route = ROUTE.match(path)
        if not route or h.command != "POST":
            return 404, {"message": "Not Found"}, {"x-amzn-ErrorType": "UnknownOperationException"}
        model, op = unquote(route["model"]), route["op"]
        early = self._pop("chat", "fail", "hang")
        if early and early.kind == "fail":
            return early.status, early.body, early.headers
        if early and self._server.stopping.wait(early.seconds):
            h.drop_connection()
            return None
        if not isinstance(body, dict):
            return _validation("The request body is not valid JSON")
        if not re.fullmatch(r"((us|eu|apac)\.)?[a-z0-9-]+\.[a-z0-9.:-]+", model):
            return _validation("The provided model identifier is invalid.")
        problem = (
            answers.converse_problem(model, body) if op.startswith("converse") else answers.invoke_problem(model, body)
        )
        if problem:
            return _validation(problem)
        script = self._pop("chat", "reply", "cut")
        mid_stream = script.body if script and script.kind == "cut" else None
        plan = script if script and script.kind == "reply" else answers.default(op, body)
        cut = script.after_chunks if mid_stream else None
        if op == "converse":
            return 200, answers.converse(plan), None
        if op == "converse-stream":
            return _stream(h, answers.converse_events(plan), cut, mid_stream)
        native = "messages" if "messages" in body else "prompt"
        if op == "invoke":
            return _send_invoke(h, plan, native)
        return _stream(h, answers.invoke_events(plan, native), cut, mid_stream)

    def _send_image(self, h: _Handler, name: str) -> None:
        data = self.images.get(name)
        if data is None:
            return _send(h, 404, b"not found", "text/plain")
        return _send(h, 200, data, getattr(self, "_image_types", {}).get(name, "image/png"))


def _send_invoke(h: _Handler, plan: _Script, native: str) -> None:
    prompt, completion = answers.tokens(plan)
    data = json.dumps(answers.invoke_answer(plan, native)).encode()
    h._head(
        200,
        {
            "Content-Type": "application/json",
            "Content-Length": str(len(data)),
            "X-Amzn-Bedrock-Input-Token-Count": str(prompt),
            "X-Amzn-Bedrock-Output-Token-Count": str(completion),
            "X-Amzn-Bedrock-Invocation-Latency": "42",
            "x-amzn-RequestId": str(uuid.uuid4()),
        },
    )
    h.wfile.write(data)


# -- the wire ------------------------------------------------------------------------------------


def _stream(h: _Handler, events: list[answers.Event], cut_after: int | None, failure: dict | None) -> None:
    """Send event-stream messages, each in its own HTTP chunk and flushed; maybe an exception event midway."""
    h._head(
        200,
        {
            "Content-Type": "application/vnd.amazon.eventstream",
            "Transfer-Encoding": "chunked",
            "x-amzn-RequestId": str(uuid.uuid4()),
            "X-Amzn-Bedrock-Content-Type": "application/json",
        },
    )
    deltas = 0
    for event_type, payload, delay in events:
        if failure is not None and event_type in ("contentBlockDelta", "chunk") and deltas == cut_after:
            message = failure.get("message") or f"{failure['type']} from the fake Bedrock"
            _write_chunk(h, eventstream.exception(failure["type"], json.dumps({"message": message}).encode()))
            break
        if delay:
            time.sleep(delay)
        _write_chunk(h, eventstream.event(event_type, json.dumps(payload).encode()))
        deltas += event_type in ("contentBlockDelta", "chunk")
    h.wfile.write(b"0\r\n\r\n")
    h.wfile.flush()


def _write_chunk(h: _Handler, data: bytes) -> None:
    h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
    h.wfile.flush()


def _send(h: _Handler, status: int, data: bytes, content_type: str) -> None:
    h._head(status, {"Content-Type": content_type, "Content-Length": str(len(data))})
    h.wfile.write(data)


def _validation(message: str) -> _Answer:
    return 400, {"message": message}, {"x-amzn-ErrorType": "ValidationException"}
