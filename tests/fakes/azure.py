"""A fake Azure OpenAI resource (and Entra ID token endpoint) for tests, on 127.0.0.1, scripted by each test.

The bodies are OpenAI's (the answers reuse FakeOpenAI's builders); what it checks and adds is
Azure's:
- URLs name a deployment, `/openai/deployments/{deployment}/chat/completions` (also
  `completions`, `embeddings`), and need a known `api-version` query (else 404 Resource not found);
  an unknown deployment is 404 DeploymentNotFound;
- auth is the `api-key` header, or `Authorization: Bearer` with a token this fake's Entra
  endpoint issued (and has not expired) or the static AD_TOKEN; else 401 Access denied;
- `stream_options` is refused before API version 2024-09-01, as Azure refuses it;
- answers carry `prompt_filter_results` and per-choice `content_filter_results`; a stream opens
  with a chunk of prompt-filter results and no choices; `reply(..., finish_reason="content_filter")`
  answers a filtered completion; `filter_prompt()` refuses the next prompt as Azure's filter does.

The token endpoint is `POST /{tenant}/oauth2/v2.0/token` on the same server (point
`azure_authority_host` at `fake.root`): the client-credentials grant with CLIENT_ID /
CLIENT_SECRET for TENANT_ID and the Cognitive Services scope; tokens live `token_lifetime` s.

    with FakeAzure.running() as fake:
        fake.reply("Hi", prompt_tokens=5, completion_tokens=1)
        ...  # api_base: fake.root, api_key: FakeAzure.API_KEY, model: azure/gpt-4o
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .mistral import _usage
from .openai import _alnum as _random_text
from .openai import _chat_completion, _default, _embeddings, _error, _events, _invalid, _text_completion
from .scripted import ScriptedFake, _Answer, _Handler, _Script

ROUTE = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/(?P<op>chat/completions|completions|embeddings)$")
TOKEN_ROUTE = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$")
ENDPOINTS = {"chat/completions": "chat", "completions": "completions", "embeddings": "embeddings"}
API_VERSIONS = frozenset(
    {
        "2024-02-01",
        "2024-06-01",
        "2024-10-21",
        "2024-02-15-preview",
        "2024-08-01-preview",
        "2024-09-01-preview",
        "2024-12-01-preview",
        "2025-01-01-preview",
        "2025-03-01-preview",
        "2025-04-01-preview",
    }
)
STREAM_OPTIONS_SINCE = "2024-09-01"
# deployment name → the model behind it, as Azure reports it in answers
DEPLOYMENTS = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "prod-chat": "gpt-4o-2024-08-06",
    "gpt-35-turbo-instruct": "gpt-35-turbo-instruct",
    "text-embedding-3-small": "text-embedding-3-small",
}
SCOPE = "https://cognitiveservices.azure.com/.default"
CATEGORIES = ("hate", "self_harm", "sexual", "violence")
FILTER_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
    "Please modify your prompt and retry. To learn more about our content filtering policies please read "
    "our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)
NOT_FOUND = {"error": {"code": "404", "message": "Resource not found"}}
ACCESS_DENIED = {
    "error": {
        "code": "401",
        "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
        "valid key for an active subscription and use a correct regional API endpoint for your resource.",
    }
}
ERROR_BODIES = {
    400: {"error": {"code": "BadRequest", "message": "Invalid request."}},
    429: {
        "error": {
            "code": "429",
            "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 "
            "have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds.",
        }
    },
    500: {
        "error": {
            "code": "InternalServerError",
            "message": "The service is temporarily unable to process your request.",
        }
    },
}


def filter_results(filtered: tuple[str, ...] = ()) -> dict[str, dict]:
    return {
        c: {"filtered": True, "severity": "high"} if c in filtered else {"filtered": False, "severity": "safe"}
        for c in CATEGORIES
    }


def content_filter_error(categories: tuple[str, ...] = ("violence",)) -> dict:
    """Azure's 400 for a prompt its content filter refused."""
    return {
        "error": {
            "message": FILTER_MESSAGE,
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": filter_results(categories)},
        }
    }


class FakeAzure(ScriptedFake):
    """An Azure OpenAI resource; queue behaviours as on FakeOpenAI (endpoints "chat", "completions", "embeddings")."""

    API_KEY = "fake-azure-key-0123456789abcdef"
    TENANT_ID = "72f988bf-0000-4000-8000-00000000beef"
    CLIENT_ID = "0d3a1f5e-1111-4111-8111-00000000c1ee"
    CLIENT_SECRET = "fake-client-secret~0123456789"
    AD_TOKEN = "fake-static-entra-token"

    @staticmethod
    def make_tool_call(spec: dict) -> dict:
        from .openai import _tool_call

        return _tool_call(spec)

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__(api_key)
        self.url = self.root  # an Azure api_base is the resource's root URL
        self.token_lifetime = 3600
        self.tokens: dict[str, float] = {}  # issued token → when it expires

    def filter_prompt(self, categories: tuple[str, ...] = ("violence",), *, endpoint: str = "chat") -> None:
        """Refuse the next prompt as Azure's content filter does (400, code content_filter)."""
        self.fail(400, content_filter_error(categories), endpoint=endpoint)

    @property
    def token_requests(self) -> int:
        return sum(1 for r in self.requests if TOKEN_ROUTE.match(r.path))

    # -- serving ------------------------------------------------------------------------------

    def _answer(self, h: _Handler, path: str, body: Any, bad_json: ValueError | None) -> _Answer | None:
        if match := TOKEN_ROUTE.match(path):
            return self._token(match["tenant"], self.requests[-1].body)
        match = ROUTE.match(path)
        if not match or h.command != "POST":
            return 404, NOT_FOUND, None
        if not self._authorized(h):
            return 401, ACCESS_DENIED, None
        version = (parse_qs(urlsplit(h.path).query).get("api-version") or [""])[0]
        if version not in API_VERSIONS:
            return 404, NOT_FOUND, None
        deployment, endpoint = match["deployment"], ENDPOINTS[match["op"]]
        if deployment not in DEPLOYMENTS:
            message = (
                "The API deployment for this resource does not exist. If you created the deployment "
                "within the last 5 minutes, please wait a moment and try again."
            )
            return 404, {"error": {"code": "DeploymentNotFound", "message": message}}, None

        early = self._pop(endpoint, "fail", "hang")
        if early and early.kind == "fail":
            failure = ERROR_BODIES.get(early.status, ERROR_BODIES[500 if early.status >= 500 else 400])
            return early.status, failure if early.body is None else early.body, early.headers
        if early and self._server.stopping.wait(early.seconds):
            h.drop_connection()
            return None

        if isinstance(body, dict):
            body = {**body, "model": body.get("model") or deployment}  # Azure ignores `model`: the URL names it
        if problem := _invalid(endpoint, body, bad_json):
            return 400, problem, None
        if body.get("stream_options") is not None and version[:10] < STREAM_OPTIONS_SINCE:
            return 400, _error("Unrecognized request argument supplied: stream_options"), None
        script = None if early else self._pop(endpoint, "reply", "cut")
        cut = script.after_chunks if script and script.kind == "cut" else None
        plan = script if script and script.kind == "reply" else _default(endpoint, body)
        model = DEPLOYMENTS[deployment]
        if body.get("stream") and endpoint != "embeddings":
            _stream(h, endpoint, body, plan, model, cut)
            return None
        build = {"chat": _chat_completion, "completions": _text_completion, "embeddings": _embeddings}[endpoint]
        payload = {**build(body, plan), "model": model}
        if endpoint != "embeddings":
            payload["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": filter_results()}]
            for choice in payload["choices"]:
                choice["content_filter_results"] = _choice_filter(choice.get("finish_reason"))
        if cut is None:
            return 200, payload, None
        h.send_truncated_json(200, payload)
        return None

    def _authorized(self, h: _Handler) -> bool:
        if h.headers.get("api-key") is not None:
            return h.headers["api-key"] == self.api_key
        auth = h.headers.get("Authorization") or ""
        token = auth.removeprefix("Bearer ")
        return auth.startswith("Bearer ") and (token == self.AD_TOKEN or self.tokens.get(token, 0) > time.time())

    def _token(self, tenant: str, raw: bytes) -> _Answer:
        """Entra ID's token endpoint, client-credentials grant only."""
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if tenant != self.TENANT_ID:
            return 400, _aad("invalid_request", 90002, f"Tenant '{tenant}' not found."), None
        if form.get("grant_type") != "client_credentials":
            return 400, _aad("unsupported_grant_type", 70003, "The app requested an unsupported grant type."), None
        if form.get("client_id") != self.CLIENT_ID:
            message = f"Application with identifier '{form.get('client_id')}' was not found in the directory."
            return 400, _aad("unauthorized_client", 700016, message), None
        if form.get("client_secret") != self.CLIENT_SECRET:
            message = (
                f"Invalid client secret provided. Ensure the secret sent is the value, for app '{self.CLIENT_ID}'."
            )
            return 401, _aad("invalid_client", 7000215, message), None
        if form.get("scope") != SCOPE:
            return (
                400,
                _aad("invalid_scope", 1002012, f"The provided value for scope {form.get('scope')} is not valid."),
                None,
            )
        token = "eyJ0eXAiOiJKV1Qi." + _random_text(40)
        self.tokens[token] = time.time() + self.token_lifetime
        lifetime = self.token_lifetime
        return (
            200,
            {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token},
            None,
        )


def _aad(error: str, number: int, description: str) -> dict:
    return {
        "error": error,
        "error_description": f"AADSTS{number}: {description} Trace ID: 0000 Correlation ID: 0000",
        "error_codes": [number],
        "timestamp": "2025-01-01 00:00:00Z",
        "trace_id": "00000000-0000-0000-0000-000000000000",
        "correlation_id": "00000000-0000-0000-0000-000000000000",
    }


def _choice_filter(finish_reason: str | None) -> dict:
    return filter_results(("violence",) if finish_reason == "content_filter" else ())


def _stream(h: _Handler, endpoint: str, body: dict, plan: _Script, model: str, cut: int | None) -> None:
    """Azure's SSE: the prompt-filter chunk (no choices), the OpenAI chunks with filter results, the
    usage chunk when asked for, [DONE]. With `cut`, drop the connection after that many pieces."""
    head, lead, pieces, finals = _events(endpoint, body, plan)
    head = {**head, "model": model}
    include_usage = (body.get("stream_options") or {}).get("include_usage")
    h.start_sse()
    annotation = [{"prompt_index": 0, "content_filter_results": filter_results()}]
    h.send_event(
        {"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": annotation}
    )
    stop = None if cut is None else len(lead) + min(cut, len(pieces))
    for sent, choice in enumerate(lead + pieces + finals):
        if sent == stop:
            return h.drop_connection()
        if plan.delay and sent:
            time.sleep(plan.delay)
        results = {} if sent < len(lead) else _choice_filter(choice.get("finish_reason"))
        h.send_event(
            {
                **head,
                "choices": [{**choice, "content_filter_results": results}],
                **({"usage": None} if include_usage else {}),
            }
        )
    if include_usage:
        h.send_event({**head, "choices": [], "usage": _usage(plan)})
    h.send_event("[DONE]")
    h.end_sse()
