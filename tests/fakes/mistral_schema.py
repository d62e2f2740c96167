"""What the fake Mistral API accepts (request validation, as strict as the real one) and its models.

Mistral validates bodies with pydantic models that forbid extra fields: an unknown field anywhere
(`stream_options`, `tool_calls[].index`, `max_completion_tokens`...) is refused with HTTP 422 and one
pydantic-style error per problem. The gateway must not send such fields, so the fake refuses them too.

Field lists come from Mistral's API reference (docs.mistral.ai/api: chat, FIM, embeddings) and the
request models of the `mistralai` SDK (`mistralai/client/models/*request.py`, SDK 3.7), narrowed to
the fields the gateway may send: the SDK also knows newer ones (metadata, top_k, reasoning_effort,
prompt_cache_key, guardrails, service_tier...); add them here when the gateway needs them. Error
`loc`s follow pydantic: messages are a union discriminated by `role`, so the role comes after the
index, as in the real `["body", "messages", 0, "user", "name"]`.
"""

from __future__ import annotations

from typing import Any

CHAT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "temperature",
        "top_p",
        "max_tokens",
        "stream",
        "stop",
        "random_seed",
        "response_format",
        "tools",
        "tool_choice",
        "presence_penalty",
        "frequency_penalty",
        "n",
        "safe_prompt",
        "prediction",
        "parallel_tool_calls",
        "prompt_mode",
        "min_tokens",
        "metadata",
        "reasoning_effort",
    }
)
MESSAGE_FIELDS = frozenset({"role", "content", "tool_calls", "tool_call_id", "name", "prefix"})
ROLES = ("assistant", "system", "tool", "user")
TOOL_CALL_FIELDS = frozenset({"id", "type", "function"})  # no `index`: OpenAI stream deltas carry it
FUNCTION_CALL_FIELDS = frozenset({"name", "arguments"})
TOOL_FIELDS = frozenset({"type", "function"})
FUNCTION_FIELDS = frozenset({"name", "description", "parameters", "strict"})
TOOL_CHOICES = ("auto", "none", "any", "required")
TOOL_CHOICE_FIELDS = frozenset({"type", "function"})
CONTENT_PART_FIELDS = {"text": frozenset({"type", "text"}), "image_url": frozenset({"type", "image_url"})}
IMAGE_URL_FIELDS = frozenset({"url", "detail"})
RESPONSE_FORMAT_FIELDS = frozenset({"type", "json_schema"})
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
PREDICTION_FIELDS = frozenset({"type", "content"})
FIM_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "suffix",
        "temperature",
        "top_p",
        "max_tokens",
        "min_tokens",
        "stream",
        "stop",
        "random_seed",
        "metadata",
    }
)
EMBEDDING_FIELDS = frozenset({"model", "input", "encoding_format", "output_dtype", "output_dimension"})
ENCODING_FORMATS = ("float",)  # OpenAI's default "base64" is refused: a gateway must strip or honour it
OUTPUT_DTYPES = ("float", "int8", "uint8", "binary", "ubinary")

# Scalar fields and their JSON types; all but NOT_NULL may also be null.
SCALARS = {
    "model": "str",
    "temperature": "number",
    "top_p": "number",
    "max_tokens": "int",
    "min_tokens": "int",
    "stream": "bool",
    "random_seed": "int",
    "presence_penalty": "number",
    "frequency_penalty": "number",
    "n": "int",
    "safe_prompt": "bool",
    "parallel_tool_calls": "bool",
    "prompt": "str",
    "suffix": "str",
    "output_dimension": "int",
    "name": "str",
    "tool_call_id": "str",
    "prefix": "bool",
}
NOT_NULL = frozenset({"model", "prompt", "input"})
_TYPES: dict[str, tuple[tuple[type, ...], str, str]] = {
    "str": ((str,), "string_type", "Input should be a valid string"),
    "number": ((int, float), "float_type", "Input should be a valid number"),
    "int": ((int,), "int_type", "Input should be a valid integer"),
    "bool": ((bool,), "bool_type", "Input should be a valid boolean"),
}

Loc = tuple[str | int, ...]


def error_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The 422 envelope Mistral wraps pydantic's `detail` list in."""
    return {
        "object": "error",
        "message": {"detail": errors},
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def body_errors(body: Any, bad_json: ValueError | None) -> list[dict[str, Any]]:
    """FastAPI's errors for a body that is not JSON, or is missing."""
    if bad_json is not None:
        return [
            {
                "type": "json_invalid",
                "loc": ["body", getattr(bad_json, "pos", 0)],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": str(bad_json)},
            }
        ]
    if body is None:
        return [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
    return []


class _Checker:
    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []

    def add(self, kind: str, loc: Loc, msg: str, value: Any, **ctx: Any) -> None:
        error = {"type": kind, "loc": ["body", *loc], "msg": msg, "input": value}
        if ctx:
            error["ctx"] = ctx
        self.errors.append(error)

    def obj(self, value: Any, loc: Loc, allowed: frozenset[str], required: tuple[str, ...] = ()) -> bool:
        """Check an object's keys; scalar values are type-checked too. False if not an object."""
        if not isinstance(value, dict):
            self.add(
                "model_attributes_type",
                loc,
                "Input should be a valid dictionary or object to extract fields from",
                value,
            )
            return False
        for key in required:
            if key not in value:
                self.add("missing", (*loc, key), "Field required", value)
        for key, item in value.items():
            if key not in allowed:
                self.add("extra_forbidden", (*loc, key), "Extra inputs are not permitted", item)
            elif key in SCALARS:
                self.scalar(item, (*loc, key), SCALARS[key], nullable=key not in NOT_NULL)
        return True

    def scalar(self, value: Any, loc: Loc, kind: str, nullable: bool = True) -> None:
        types, code, msg = _TYPES[kind]
        if value is None and nullable:
            return
        if not isinstance(value, types) or (isinstance(value, bool) and kind != "bool"):
            self.add(code, loc, msg, value)

    def literal(self, value: Any, loc: Loc, choices: tuple[str, ...]) -> None:
        if value not in choices:
            quoted = [f"'{c}'" for c in choices]
            expected = " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)
            self.add("literal_error", loc, f"Input should be {expected}", value, expected=expected)

    def list_of(self, value: Any, loc: Loc) -> list[Any]:
        if not isinstance(value, list):
            self.add("list_type", loc, "Input should be a valid list", value)
            return []
        return value

    def strings(self, value: Any, loc: Loc, nullable: bool = True) -> None:
        """`stop` and embedding `input`: a string or a list of strings."""
        if (value is None and nullable) or isinstance(value, str):
            return
        for i, item in enumerate(self.list_of(value, loc)):
            self.scalar(item, (*loc, i), "str")

    def content(self, value: Any, loc: Loc) -> None:
        if value is None or isinstance(value, str):
            return
        for j, part in enumerate(self.list_of(value, loc)):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in CONTENT_PART_FIELDS:
                self.add(
                    "union_tag_invalid",
                    (*loc, j),
                    f"Input tag '{kind}' found using 'type' does not match any of the expected tags: "
                    + ", ".join(f"'{t}'" for t in CONTENT_PART_FIELDS),
                    part,
                )
                continue
            self.obj(part, (*loc, j, kind), CONTENT_PART_FIELDS[kind], required=(kind,))
            if kind == "text":
                self.scalar(part.get("text"), (*loc, j, kind, "text"), "str")
            elif isinstance(part.get("image_url"), dict):
                self.obj(part["image_url"], (*loc, j, kind, "image_url"), IMAGE_URL_FIELDS, required=("url",))
            else:
                self.scalar(part.get("image_url"), (*loc, j, kind, "image_url"), "str")

    def message(self, message: Any, index: int) -> None:
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            self.add(
                "union_tag_invalid",
                ("messages", index),
                f"Input tag '{role}' found using 'role' does not match any of the expected tags: "
                + ", ".join(f"'{r}'" for r in ROLES),
                message,
            )
            return
        loc: Loc = ("messages", index, role)
        self.obj(message, loc, MESSAGE_FIELDS, required=() if role == "assistant" else ("content",))
        self.content(message.get("content"), (*loc, "content"))
        for i, call in enumerate(self.list_of(message.get("tool_calls") or [], (*loc, "tool_calls"))):
            if self.obj(call, (*loc, "tool_calls", i), TOOL_CALL_FIELDS, required=("function",)):
                self.obj(
                    call.get("function", {}),
                    (*loc, "tool_calls", i, "function"),
                    FUNCTION_CALL_FIELDS,
                    required=("name", "arguments"),
                )

    def tool_choice(self, value: Any) -> None:
        if isinstance(value, dict):
            if self.obj(value, ("tool_choice",), TOOL_CHOICE_FIELDS, required=("function",)):
                self.obj(
                    value.get("function", {}), ("tool_choice", "function"), frozenset({"name"}), required=("name",)
                )
        else:
            self.literal(value, ("tool_choice",), TOOL_CHOICES)


def validate_chat(body: Any) -> list[dict[str, Any]]:
    check = _Checker()
    if not check.obj(body, (), CHAT_FIELDS, required=("model", "messages")):
        return check.errors
    if "messages" in body:
        messages = check.list_of(body["messages"], ("messages",))
        if isinstance(body["messages"], list) and not messages:
            check.add(
                "too_short",
                ("messages",),
                "List should have at least 1 item after validation, not 0",
                messages,
                field_type="List",
                min_length=1,
                actual_length=0,
            )
        for i, message in enumerate(messages):
            check.message(message, i)
    for i, tool in enumerate(check.list_of(body.get("tools") or [], ("tools",))):
        if check.obj(tool, ("tools", i), TOOL_FIELDS, required=("function",)):
            check.obj(
                tool.get("function", {}), ("tools", i, "function"), FUNCTION_FIELDS, required=("name", "parameters")
            )
    if body.get("tool_choice") is not None:
        check.tool_choice(body["tool_choice"])
    check.strings(body.get("stop"), ("stop",))
    if body.get("response_format") is not None and check.obj(
        body["response_format"], ("response_format",), RESPONSE_FORMAT_FIELDS
    ):
        kind = body["response_format"].get("type", "text")
        check.literal(kind, ("response_format", "type"), RESPONSE_FORMATS)
    if body.get("prediction") is not None:
        check.obj(body["prediction"], ("prediction",), PREDICTION_FIELDS)
    if body.get("prompt_mode") is not None:
        check.literal(body["prompt_mode"], ("prompt_mode",), ("reasoning",))
    return check.errors


def validate_fim(body: Any) -> list[dict[str, Any]]:
    check = _Checker()
    if check.obj(body, (), FIM_FIELDS, required=("model", "prompt")):
        check.strings(body.get("stop"), ("stop",))
    return check.errors


def validate_embeddings(body: Any) -> list[dict[str, Any]]:
    check = _Checker()
    if check.obj(body, (), EMBEDDING_FIELDS, required=("model", "input")):
        check.strings(body.get("input", ""), ("input",), nullable=False)
        if body.get("encoding_format") is not None:
            check.literal(body["encoding_format"], ("encoding_format",), ENCODING_FORMATS)
        if body.get("output_dtype") is not None:
            check.literal(body["output_dtype"], ("output_dtype",), OUTPUT_DTYPES)
    return check.errors


def last_role_error(messages: list[dict[str, Any]]) -> str | None:
    """Mistral answers 400 unless the conversation ends with a user or tool turn (or an assistant prefix)."""
    last = messages[-1]
    if last["role"] in ("user", "tool") or (last["role"] == "assistant" and last.get("prefix")):
        return None
    return f"Expected last role User or Tool (or Assistant with prefix True) for serving but got {last['role']}"


def _card(
    model_id: str,
    name: str,
    description: str,
    context: int,
    aliases: list[str],
    *,
    chat: bool = True,
    fim: bool = False,
    tools: bool = True,
    vision: bool = False,
    temperature: float | None = 0.3,
) -> dict:
    """A model card as GET /v1/models returns it; mistralai 1.x+ needs `type` and `capabilities`."""
    return {
        "id": model_id,
        "object": "model",
        "created": 1_735_689_600,
        "owned_by": "mistralai",
        "capabilities": {
            "completion_chat": chat,
            "completion_fim": fim,
            "function_calling": tools,
            "fine_tuning": False,
            "vision": vision,
            "classification": False,
        },
        "name": name,
        "description": description,
        "max_context_length": context,
        "aliases": aliases,
        "deprecation": None,
        "deprecation_replacement_model": None,
        "default_model_temperature": temperature,
        "type": "base",
    }


# GET /v1/models: the fields of the API reference's BaseModelCard, with the capabilities and context
# lengths Mistral publishes for these models (dated names as aliases, as the real list does).
MODELS = [
    _card(
        "mistral-small-latest",
        "mistral-small-2506",
        "Our small, fast model.",
        131072,
        ["mistral-small-2506"],
        vision=True,
    ),
    _card(
        "open-mistral-nemo",
        "open-mistral-nemo-2407",
        "Our best multilingual open source model.",
        131072,
        ["open-mistral-nemo-2407"],
    ),
    _card(
        "codestral-latest",
        "codestral-2508",
        "Our cutting-edge language model for coding.",
        256000,
        ["codestral-2508"],
        fim=True,
    ),
    _card(
        "mistral-embed",
        "mistral-embed",
        "Our state-of-the-art semantic embedding model.",
        8192,
        [],
        chat=False,
        tools=False,
        temperature=None,
    ),
]
