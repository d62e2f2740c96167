"""Read and check SDK request bodies: the fields Tollgate acts on, typed; the rest untouched.

Hand-written checks rather than DRF serializers: they run on every request, and a serializer
pass measured several times the cost of these few isinstance checks (docs/concurrency.md).
Each failure names the parameter, as OpenAI's API does: 400 with `param` and `code`.
"""

from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest

from proxy.exceptions import BodyTooLarge, InvalidRequest

Body = dict[str, Any]
NUMBER = (int, float)
ROLES = {"system", "user", "assistant", "tool", "developer", "function"}

# name: (accepted types, minimum) — every optional field may also be null (= not set).
COMMON = {
    "stream": (bool, None),
    "max_tokens": (int, 1),
    "max_completion_tokens": (int, 1),
    "temperature": (NUMBER, 0),
    "top_p": (NUMBER, 0),
    "n": (int, 1),
    "stop": ((str, list), None),
    "seed": (int, None),
    "random_seed": (int, 0),
    "presence_penalty": (NUMBER, None),
    "frequency_penalty": (NUMBER, None),
    "user": (str, None),
    "stream_options": (dict, None),
    "min_tokens": (int, 0),
    "metadata": (dict, None),
}
CHAT = {
    **COMMON,
    "tools": (list, None),
    "tool_choice": ((str, dict), None),
    "response_format": (dict, None),
    "safe_prompt": (bool, None),
    "parallel_tool_calls": (bool, None),
    "prompt_mode": (str, None),
}
COMPLETION = {**COMMON, "suffix": (str, None), "echo": (bool, None), "best_of": (int, 1)}
FIM = {**COMMON, "suffix": (str, None)}
EMBEDDINGS = {
    "encoding_format": (str, None),
    "dimensions": (int, 1),
    "user": (str, None),
    "output_dimension": (int, 1),
    "output_dtype": (str, None),
}


def read_json(request: HttpRequest) -> Body:
    """Return the JSON object in the request body; 413 past the size limit, 400 if not JSON."""
    limit = settings.TOLLGATE_MAX_REQUEST_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise BodyTooLarge(
            f"The request body is {declared} bytes; the limit is {limit} bytes.", code="request_too_large"
        )
    raw = request.read(limit + 1)
    request.body_bytes = len(raw)  # type: ignore[attr-defined]  # bounds the prompt's tokens (pricebook)
    if len(raw) > limit:
        raise BodyTooLarge(f"The request body exceeds the limit of {limit} bytes.", code="request_too_large")
    if not raw.strip():
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidRequest(f"The request body is not valid JSON: {e}.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    request.json_body = body  # type: ignore[attr-defined]  # the usage row of a refused request names its model
    return body


def chat(request: HttpRequest) -> Body:
    body = read_json(request)
    _model(body)
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest(
            "'messages' must be a non-empty array of message objects.", param="messages", code="invalid_type"
        )
    for index, message in enumerate(messages):
        _message(message, index)
    _fields(body, CHAT)
    return body


def completion(request: HttpRequest) -> Body:
    body = read_json(request)
    _model(body)
    prompt = body.get("prompt")
    if prompt is None:
        raise _missing("prompt")
    if not isinstance(prompt, str | list):
        raise InvalidRequest("'prompt' must be a string or an array of strings.", param="prompt", code="invalid_type")
    _fields(body, COMPLETION)
    return body


def fim(request: HttpRequest) -> Body:
    body = read_json(request)
    _model(body)
    if body.get("prompt") is None:
        raise _missing("prompt")
    if not isinstance(body["prompt"], str):
        raise InvalidRequest("'prompt' must be a string.", param="prompt", code="invalid_type")
    _fields(body, FIM)
    return body


def embeddings(request: HttpRequest) -> Body:
    body = read_json(request)
    _model(body)
    data = body.get("input")
    if data is None:
        raise _missing("input")
    if not (isinstance(data, str) or (isinstance(data, list) and data)):
        raise InvalidRequest("'input' must be a string or a non-empty array.", param="input", code="invalid_type")
    _fields(body, EMBEDDINGS)
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise InvalidRequest(
            "'encoding_format' must be 'float' or 'base64'.", param="encoding_format", code="invalid_value"
        )
    return body


def wants_usage(body: Body) -> bool:
    """Did an OpenAI client ask for the final usage chunk (stream_options.include_usage)?"""
    options = body.get("stream_options")
    return bool(isinstance(options, dict) and options.get("include_usage"))


def _model(body: Body) -> None:
    model = body.get("model")
    if model is None:
        raise _missing("model")
    if not isinstance(model, str) or not model or len(model) > 256:
        raise InvalidRequest(
            "'model' must be a non-empty string (a model name from /v1/models).", param="model", code="invalid_type"
        )


def _message(message: Any, index: int) -> None:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise InvalidRequest(
            f"'{where}' must be an object with 'role' and 'content'.", param=where, code="invalid_type"
        )
    role = message.get("role")
    if role not in ROLES:
        raise InvalidRequest(
            f"'{where}.role' must be one of {', '.join(sorted(ROLES))}; got {role!r}.",
            param=f"{where}.role",
            code="invalid_value",
        )
    content = message.get("content")
    if content is None and role in ("user", "system", "developer"):
        raise _missing(f"{where}.content")
    if content is not None and not isinstance(content, str | list):
        raise InvalidRequest(
            f"'{where}.content' must be a string or an array of content parts.",
            param=f"{where}.content",
            code="invalid_type",
        )
    if isinstance(content, list):
        for part_index, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise InvalidRequest(
                    f"'{where}.content[{part_index}]' must be an object with a 'type'.",
                    param=f"{where}.content[{part_index}]",
                    code="invalid_type",
                )
    if message.get("tool_calls") is not None and not isinstance(message["tool_calls"], list):
        raise InvalidRequest(
            f"'{where}.tool_calls' must be an array.", param=f"{where}.tool_calls", code="invalid_type"
        )


def _fields(body: Body, rules: dict[str, tuple[Any, Any]]) -> None:
    for name, (types, minimum) in rules.items():
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) and types is not bool and not (isinstance(types, tuple) and bool in types):
            raise _wrong_type(name, types)
        if not isinstance(value, types):
            raise _wrong_type(name, types)
        if minimum is not None and isinstance(value, NUMBER) and value < minimum:
            raise InvalidRequest(f"'{name}' must be at least {minimum}; got {value}.", param=name, code="invalid_value")


def _wrong_type(name: str, types: Any) -> InvalidRequest:
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }
    wanted = " or ".join(dict.fromkeys(names[t] for t in (types if isinstance(types, tuple) else (types,))))
    if types is NUMBER:
        wanted = "a number"
    return InvalidRequest(f"'{name}' must be {wanted}.", param=name, code="invalid_type")


def _missing(name: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
