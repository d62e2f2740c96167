"""A fake Amazon Bedrock runtime (and STS) for tests: AWS's wire format on 127.0.0.1, scripted by each test.

Tollgate's real boto3 client talks to it over HTTP; nothing in botocore is stubbed. Like AWS it
verifies each request's SigV4 signature (bedrock_auth.py) with the test secret, answers Converse,
ConverseStream (binary event-stream frames with CRCs, bedrock_eventstream.py), InvokeModel and
InvokeModelWithResponseStream in their real shapes (Mistral's prompt and messages formats), refuses
what Bedrock-Mistral refuses (tool-call ids that are not 9 alphanumeric characters, turns out of
order, blank text), and fails on demand: `error("ThrottlingException")` before the answer,
`error_mid_stream("modelStreamErrorException")` after some chunks. It also serves images over
HTTP (`image_url(...)`) and answers STS AssumeRole with temporary keys it then accepts.

    with FakeBedrock.running() as fake:
        fake.reply_stream(["Hel", "lo"], prompt_tokens=12, completion_tokens=2)
        ...  # aws_bedrock_runtime_endpoint: fake.root, the keys FakeBedrock.ACCESS_KEY_ID / SECRET_ACCESS_KEY
"""

from __future__ import annotations

import base64
import datetime
import json
import random
import re
import string
import struct
import time
import uuid
import zlib
from typing import Any
from urllib.parse import unquote

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
MISTRAL_TOOL_ID = re.compile(r"[A-Za-z0-9]{9}")
IMAGE_FORMATS = {"png", "jpeg", "gif", "webp"}
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
        problem = _converse_problem(model, body) if op.startswith("converse") else _invoke_problem(model, body)
        if problem:
            return _validation(problem)
        script = self._pop("chat", "reply", "cut")
        mid_stream = script.body if script and script.kind == "cut" else None
        plan = script if script and script.kind == "reply" else _default(op, body)
        cut = script.after_chunks if mid_stream else None
        if op == "converse":
            return 200, _converse(plan), None
        if op == "converse-stream":
            return _stream(h, _converse_events(plan), cut, mid_stream)
        native = "messages" if "messages" in body else "prompt"
        if op == "invoke":
            return _send_invoke(h, plan, native)
        return _stream(h, _invoke_events(plan, native), cut, mid_stream)

    def _send_image(self, h: _Handler, name: str) -> None:
        data = self.images.get(name)
        if data is None:
            return _send(h, 404, b"not found", "text/plain")
        return _send(h, 200, data, getattr(self, "_image_types", {}).get(name, "image/png"))


# -- checks Bedrock makes ------------------------------------------------------------------------


def _converse_problem(model: str, body: dict) -> str | None:
    messages = body.get("messages")
    if not messages:
        return "A conversation must start with a user message."
    expected = "user"
    tool_uses: set[str] = set()
    for turn in messages:
        if turn.get("role") != expected:
            return "A conversation must alternate between user and assistant roles."
        expected = "assistant" if expected == "user" else "user"
        for block in turn.get("content") or []:
            if "text" in block and not str(block["text"]).strip():
                return "The text field in the ContentBlock object is blank."
            if "image" in block:
                image = block["image"]
                if image.get("format") not in IMAGE_FORMATS:
                    return "The image format is not supported."
                base64.b64decode(image["source"]["bytes"])
            use = block.get("toolUse") or block.get("toolResult")
            if use is not None:
                if not body.get("toolConfig"):
                    return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
                if "mistral" in model and not MISTRAL_TOOL_ID.fullmatch(use.get("toolUseId", "")):
                    return "Tool call id has to be 9 characters long and alphanumeric (a-z, A-Z, 0-9)."
                if "toolUse" in block:
                    tool_uses.add(use["toolUseId"])
                elif use["toolUseId"] not in tool_uses:
                    return f"toolResult id {use['toolUseId']} matches no toolUse id in the previous turns."
    if body.get("system") and ("7b" in model or "mixtral" in model):
        return "This model doesn't support system messages."
    return None


def _invoke_problem(model: str, body: dict) -> str | None:
    if "messages" in body:
        if "large-2407" not in model and "pixtral" not in model:
            return f"Malformed input request: #: extraneous key [messages] is not permitted (model {model})"
        for message in body["messages"]:
            for call in message.get("tool_calls") or []:
                if not MISTRAL_TOOL_ID.fullmatch(call.get("id", "")):
                    return "Tool call id has to be 9 characters long and alphanumeric."
            if message.get("role") == "tool" and not MISTRAL_TOOL_ID.fullmatch(message.get("tool_call_id", "")):
                return "Tool call id has to be 9 characters long and alphanumeric."
        return None
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        return "Malformed input request: #: required key [prompt] not found"
    if not prompt.startswith("<s>[INST]"):
        return "The prompt must use Mistral's instruction format"
    return None


# -- what the model says -------------------------------------------------------------------------


def _default(op: str, body: dict) -> _Script:
    """A plausible, deterministic answer to any of the four operations' bodies."""
    if "prompt" in body:
        last = body["prompt"].rsplit("[INST]", 1)[-1].removesuffix("[/INST]").strip()
        return _Script(chunks=_words(f"Echo: {last}"), prompt_tokens=len(body["prompt"].split()))
    turns = body["messages"]
    prompt_tokens = sum(len(json.dumps(t).split()) for t in turns)
    last = turns[-1]
    blocks = last.get("content")
    if isinstance(blocks, str) or blocks is None:  # Mistral's messages format
        blocks = [{"text": blocks or ""}]
    images = [b["image"] for b in blocks if "image" in b]
    results = [b["toolResult"] for b in blocks if "toolResult" in b]
    text = " ".join(str(b.get("text", "")) for b in blocks if "text" in b)
    if last.get("role") == "tool":
        results = [{"content": [{"text": last.get("content", "")}]}]
    if images:
        sizes = ", ".join(f"{i['format']} ({len(base64.b64decode(i['source']['bytes']))} bytes)" for i in images)
        return _Script(chunks=_words(f"I see an image: {sizes}"), prompt_tokens=prompt_tokens)
    if results:
        said = " ".join(c.get("text", "") for r in results for c in r.get("content", []))
        return _Script(chunks=_words(f"The tool says: {said}"), prompt_tokens=prompt_tokens)
    tools = _tools(body)
    choice = body.get("toolConfig", {}).get("toolChoice") or body.get("tool_choice")
    forced = (isinstance(choice, dict) and ("any" in choice or "tool" in choice)) or choice == "any"
    if tools and (forced or "weather" in text.lower()):
        named = choice.get("tool", {}).get("name") if isinstance(choice, dict) else None
        tool = next((t for t in tools if t["name"] == named), tools[0])
        call = {"id": None, "name": tool["name"], "input": _arguments(tool["schema"])}
        return _Script(chunks=[""], tool_calls=[call], prompt_tokens=prompt_tokens, finish_reason="tool_use")
    return _Script(chunks=_words(f"Echo: {text}"), prompt_tokens=prompt_tokens)


def _tools(body: dict) -> list[dict]:
    if "toolConfig" in body:
        return [
            {"name": t["toolSpec"]["name"], "schema": t["toolSpec"]["inputSchema"]["json"]}
            for t in body["toolConfig"].get("tools", [])
        ]
    return [
        {"name": t["function"]["name"], "schema": t["function"].get("parameters") or {}} for t in body.get("tools", [])
    ]


def _arguments(schema: dict) -> dict:
    properties = schema.get("properties") or {}
    samples = {"string": "Paris", "number": 1, "integer": 1, "boolean": True}
    return {n: samples.get(properties.get(n, {}).get("type"), "Paris") for n in schema.get("required") or properties}


def _words(text: str) -> list[str]:
    return re.findall(r"\s*\S+\s*$|\s*\S+", text) or [""]


def _tokens(plan: _Script) -> tuple[int, int]:
    completion = plan.completion_tokens
    if completion is None:
        completion = len([c for c in plan.chunks if c]) + 12 * len(plan.tool_calls)
    return plan.prompt_tokens or 0, completion


def _tool_use_id() -> str:
    return "tooluse_" + "".join(random.choices(string.ascii_letters + string.digits, k=22))


def _mistral_id() -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=9))


def _stop(plan: _Script) -> str:
    if plan.finish_reason in (None, "stop"):
        return "tool_use" if plan.tool_calls else "end_turn"
    return {"length": "max_tokens", "tool_calls": "tool_use"}.get(plan.finish_reason, plan.finish_reason)


# -- Converse ------------------------------------------------------------------------------------


def _converse(plan: _Script) -> dict:
    prompt, completion = _tokens(plan)
    content: list[dict] = [{"text": "".join(plan.chunks)}] if "".join(plan.chunks) else []
    content += [
        {"toolUse": {"toolUseId": c["id"] or _tool_use_id(), "name": c["name"], "input": c["input"]}}
        for c in plan.tool_calls
    ]
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": _stop(plan),
        "usage": {"inputTokens": prompt, "outputTokens": completion, "totalTokens": prompt + completion},
        "metrics": {"latencyMs": 42},
    }


def _converse_events(plan: _Script) -> list[tuple[str, dict, float]]:
    """(event type, payload, delay before it) for one answer, in AWS's order."""
    prompt, completion = _tokens(plan)
    events: list[tuple[str, dict, float]] = [("messageStart", {"role": "assistant"}, 0.0)]
    index = 0
    texts = [c for c in plan.chunks if c]
    if texts:
        events += [("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": t}}, plan.delay) for t in texts]
        events.append(("contentBlockStop", {"contentBlockIndex": 0}, 0.0))
        index = 1
    for call in plan.tool_calls:
        start = {"toolUse": {"toolUseId": call["id"] or _tool_use_id(), "name": call["name"]}}
        arguments = json.dumps(call["input"])
        half = len(arguments) // 2
        events.append(("contentBlockStart", {"contentBlockIndex": index, "start": start}, 0.0))
        for part in (arguments[:half], arguments[half:]):
            events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": part}}}, 0))
        events.append(("contentBlockStop", {"contentBlockIndex": index}, 0.0))
        index += 1
    events.append(("messageStop", {"stopReason": _stop(plan)}, 0.0))
    usage = {"inputTokens": prompt, "outputTokens": completion, "totalTokens": prompt + completion}
    events.append(("metadata", {"usage": usage, "metrics": {"latencyMs": 42}}, 0.0))
    return events


# -- InvokeModel (Mistral's native formats) ------------------------------------------------------


def _invoke_answer(plan: _Script, native: str) -> dict:
    text = "".join(plan.chunks)
    if native == "prompt":
        return {"outputs": [{"text": text, "stop_reason": "length" if plan.finish_reason == "length" else "stop"}]}
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if plan.tool_calls:
        message["tool_calls"] = [
            {"id": c["id"] or _mistral_id(), "function": {"name": c["name"], "arguments": json.dumps(c["input"])}}
            for c in plan.tool_calls
        ]
    stop = "tool_calls" if plan.tool_calls else ("length" if plan.finish_reason == "length" else "stop")
    return {
        "id": uuid.uuid4().hex,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "stop_reason": stop}],
    }


def _send_invoke(h: _Handler, plan: _Script, native: str) -> None:
    prompt, completion = _tokens(plan)
    data = json.dumps(_invoke_answer(plan, native)).encode()
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


def _invoke_events(plan: _Script, native: str) -> list[tuple[str, dict, float]]:
    """`chunk` events, each the model's native JSON base64-encoded; the last carries the metrics."""
    prompt, completion = _tokens(plan)
    pieces: list[dict] = []
    for text in (c for c in plan.chunks if c):
        if native == "prompt":
            pieces.append({"outputs": [{"text": text, "stop_reason": None}]})
        else:
            pieces.append(
                {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "stop_reason": None}]}
            )
    final = _invoke_answer(_Script(chunks=[""], tool_calls=plan.tool_calls, finish_reason=plan.finish_reason), native)
    if native == "prompt":
        final["outputs"][0]["text"] = ""
    final["amazon-bedrock-invocationMetrics"] = {
        "inputTokenCount": prompt,
        "outputTokenCount": completion,
        "invocationLatency": 42,
        "firstByteLatency": 7,
    }
    pieces.append(final)
    return [("chunk", {"bytes": base64.b64encode(json.dumps(p).encode()).decode()}, plan.delay) for p in pieces]


# -- the wire ------------------------------------------------------------------------------------


def _stream(h: _Handler, events: list[tuple[str, dict, float]], cut_after: int | None, failure: dict | None) -> None:
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
