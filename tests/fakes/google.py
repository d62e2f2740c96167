"""A fake Google for tests: token endpoint, Vertex AI and AI Studio on one 127.0.0.1 server, scripted by each test.

- `POST /token`: the OAuth token endpoint a service account's `token_uri` names. It verifies the
  JWT assertion's RS256 signature with the test key pair's public key (google_auth.py) and issues
  short random bearer tokens (`token_lifetime` seconds).
- `POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent` (and
  `:streamGenerateContent?alt=sse`, `:predict`): Vertex AI's Gemini. Requires an issued, unexpired
  bearer token. `publishers/mistralai/models/{m}:rawPredict` / `:streamRawPredict`: Mistral on
  Vertex, Mistral's chat and FIM format (checked by mistral_schema.py), its SSE ending in [DONE].
- `POST /v1beta/models/{m}:generateContent` (and the stream, `:batchEmbedContents`): AI Studio.
  Requires the API key in `x-goog-api-key` (or `?key=`); a wrong one is 400 API_KEY_INVALID, as
  Google answers.

    with FakeGoogle.running() as fake:
        fake.reply_stream(["Hel", "lo"], prompt_tokens=12, completion_tokens=2)
        deployment: vertex_credentials=fake.service_account(), api_base=fake.root
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import google_answers as answers
from . import mistral_schema
from .google_auth import GRANT_TYPE, ServiceAccountKey
from .mistral import _completion as mistral_completion
from .mistral import _default as mistral_default
from .mistral import _stream as mistral_stream
from .scripted import ScriptedFake, _Answer, _Handler, _Script

VERTEX = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers/(?P<publisher>[^/]+)/models/(?P<model>[^/:]+):(?P<method>\w+)$"
)
STUDIO = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<method>\w+)$")
ENDPOINTS = {
    "generateContent": "chat",
    "streamGenerateContent": "chat",
    "rawPredict": "chat",
    "streamRawPredict": "chat",
    "predict": "embeddings",
    "batchEmbedContents": "embeddings",
}
# Variables that would let google-auth look beyond what a test gives it (metadata server, ADC files).
GOOGLE_VARIABLES = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "VERTEXAI_PROJECT",
    "VERTEXAI_LOCATION",
    "VERTEXAI_CREDENTIALS",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_API_BASE",
    "GOOGLE_AUTH_TRUST_BOUNDARY_ENABLED",
)
ISOLATION = {"NO_GCE_CHECK": "True", "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9"}


class FakeGoogle(ScriptedFake):
    """Google's token endpoint, Vertex AI and AI Studio; queue behaviours with reply/reply_stream/fail/....

    Endpoints for scripting: "chat" (generateContent, rawPredict chat), "fim" (rawPredict with a
    prompt), "embeddings". With nothing queued, answers follow google_answers.default (Gemini) or
    the fake Mistral's defaults (Mistral on Vertex).
    """

    API_KEY = "fake-gemini-api-key-0123456789"

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__(api_key)
        self.key = ServiceAccountKey.shared()
        self.token_uri = f"{self.root}/token"
        self.gemini_url = f"{self.root}/v1beta"
        self.token_lifetime = 3600
        self.issued: dict[str, float] = {}  # bearer token → when it expires
        self.token_requests = 0
        self.token_failure: dict | None = None  # the next token request's error body, when set

    @staticmethod
    def make_tool_call(spec: dict) -> dict:
        function = spec.get("function", spec)
        arguments = function.get("arguments", {})
        return {"name": function["name"], "args": json.loads(arguments) if isinstance(arguments, str) else arguments}

    def service_account(self, **overrides: Any) -> dict[str, Any]:
        """The test service account's JSON, its token_uri pointing at this fake."""
        return {**self.key.info(self.token_uri), **overrides}

    # -- scripting beyond ScriptedFake ------------------------------------------------------------

    def block_prompt(self, reason: str = "SAFETY") -> None:
        """Refuse the next prompt as the safety filters do: no candidates, promptFeedback.blockReason."""
        self._queue("chat", _Script(kind="block", body=reason))

    def error_mid_stream(self, after_chunks: int, status: int = 503, message: str | None = None) -> None:
        """Stream `after_chunks` text pieces of the default answer, then an `{"error": ...}` event."""
        self._queue("chat", _Script(kind="cut", after_chunks=after_chunks, status=status, body=message))

    def reset(self) -> None:
        super().reset()
        self.token_lifetime = 3600
        self.token_failure = None
        self.token_requests = 0

    @property
    def bearer_tokens(self) -> list[str]:
        return [
            r.headers["authorization"][7:]
            for r in self.requests
            if r.headers.get("authorization", "").startswith("Bearer ")
        ]

    # -- serving ----------------------------------------------------------------------------------

    def _answer(self, h: _Handler, path: str, body: Any, bad_json: ValueError | None) -> _Answer | None:
        if path == "/token" and h.command == "POST":
            return self._token(self.requests[-1].body)
        query = parse_qs(urlsplit(h.path).query)
        if match := VERTEX.match(path):
            if not self._bearer_ok(h.headers.get("Authorization", "")):
                return 401, answers.error(401), None
            route = match.groupdict()
        elif match := STUDIO.match(path):
            key = h.headers.get("x-goog-api-key") or (query.get("key") or [""])[0]
            if key != self.api_key:
                return (
                    400,
                    answers.error(400, "API key not valid. Please pass a valid API key.", reason="API_KEY_INVALID"),
                    None,
                )
            route = {**match.groupdict(), "publisher": "google"}
        else:
            return 404, answers.error(404, f"{path} was not found"), None
        if h.command != "POST":
            return 405, answers.error(400, "Method not allowed"), None
        if body is None:
            return 400, answers.error(400, f"Invalid JSON payload received. {bad_json or 'empty body'}"), None

        method = route["method"]
        endpoint = ENDPOINTS.get(method)
        if endpoint is None:
            return 404, answers.error(404, f"unknown method {method}"), None
        if endpoint == "chat" and route["publisher"] == "mistralai" and "prompt" in body:
            endpoint = "fim"
        early = self._pop(endpoint, "fail", "hang")
        if early and early.kind == "fail":
            return early.status, answers.error(early.status) if early.body is None else early.body, early.headers
        if early and self._server.stopping.wait(early.seconds):
            h.drop_connection()
            return None

        if route["publisher"] == "mistralai":
            return self._mistral(h, route, body, endpoint, early)
        if endpoint == "embeddings":
            return self._embeddings(method, route["model"], body)
        stream = method == "streamGenerateContent"
        if stream and query.get("alt") != ["sse"]:
            return 400, answers.error(400, "Tollgate's fake speaks streamGenerateContent only with alt=sse"), None
        if errors := answers.request_errors(body, route["model"]):
            return 400, answers.error(400, "; ".join(errors)), None
        script = None if early else self._pop("chat", "reply", "block", "cut")
        if script and script.kind == "block":
            if not stream:
                return 200, answers.blocked(script.body), None
            _sse(h, [answers.blocked(script.body)], cut=None, delay=0)
            return None
        plan = script if script and script.kind == "reply" else answers.default(body)
        if not stream:
            return 200, answers.response(route["model"], plan), None
        cut = script if script and script.kind == "cut" else None
        _sse(h, answers.stream_events(route["model"], plan), cut=cut, delay=plan.delay)
        return None

    def _mistral(self, h: _Handler, route: dict, body: dict, endpoint: str, early: _Script | None) -> _Answer | None:
        model = route["model"].split("@")[0]
        if body.get("model") != model:
            return (
                400,
                {
                    "object": "error",
                    "message": f"model must be {model!r} (no @version)",
                    "type": "invalid_request_error",
                },
                None,
            )
        validate = mistral_schema.validate_fim if endpoint == "fim" else mistral_schema.validate_chat
        if errors := validate(body):
            return 422, mistral_schema.error_body(errors), None
        script = None if early else self._pop(endpoint, "reply")
        plan = script or mistral_default(endpoint, body)
        if route["method"] == "streamRawPredict":
            mistral_stream(h, model, plan, cut_after=None)
            return None
        return 200, mistral_completion(model, plan), None

    def _embeddings(self, method: str, model: str, body: dict) -> _Answer:
        if method == "batchEmbedContents":
            texts = [r["content"]["parts"][0]["text"] for r in body["requests"]]
            dims = body["requests"][0].get("outputDimensionality") or 8
            return 200, {"embeddings": [{"values": _vector(t, dims)} for t in texts]}, None
        texts = [i["content"] for i in body["instances"]]
        dims = (body.get("parameters") or {}).get("outputDimensionality") or 8
        predictions = [
            {
                "embeddings": {
                    "values": _vector(t, dims),
                    "statistics": {"token_count": len(t.split()), "truncated": False},
                }
            }
            for t in texts
        ]
        return 200, {"predictions": predictions, "metadata": {"billableCharacterCount": sum(map(len, texts))}}, None

    def _token(self, raw: bytes) -> _Answer:
        self.token_requests += 1
        if self.token_failure is not None:
            failure, self.token_failure = self.token_failure, None
            return 400, failure, None
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if form.get("grant_type") != GRANT_TYPE:
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}, None
        try:
            self.key.verify(form.get("assertion", ""))
        except ValueError as e:
            return 400, {"error": "invalid_grant", "error_description": str(e)}, None
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        self.issued[token] = time.time() + self.token_lifetime
        return 200, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}, None

    def _bearer_ok(self, header: str) -> bool:
        token = header[7:] if header.startswith("Bearer ") else ""
        return self.issued.get(token, 0) > time.time()


def _sse(h: _Handler, events: list[dict], *, cut: _Script | None, delay: float) -> None:
    """Gemini's SSE: one `data: {...}` event per piece, no [DONE]; `cut` ends it with an error event."""
    h.start_sse()
    for sent, event in enumerate(events):
        if cut is not None and sent == cut.after_chunks:
            h.send_event(answers.error(cut.status, cut.body))
            break
        if delay and sent:
            time.sleep(delay)
        h.send_event(event)
    h.end_sse()


def _vector(text: str, dims: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest() * (1 + dims // 32)
    vector = [b / 127.5 - 1 for b in digest[:dims]]
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [round(v / norm, 6) for v in vector]
