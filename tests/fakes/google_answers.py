"""What the fake Gemini says: request checks, deterministic answers, and the response and SSE shapes.

Shapes follow Google's GenerateContentResponse: `candidates[].content.parts`, `finishReason`,
`usageMetadata` (running totals on every stream event, complete on the last), `modelVersion`.
Checks refuse what Gemini refuses with 400 INVALID_ARGUMENT: unknown fields (Google rejects
`Unknown name "x"`), roles other than user/model, empty or ambiguous parts, JSON Schema keywords
outside its OpenAPI subset, and (Gemini 3) a replayed function call without its thoughtSignature.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

from .scripted import _Script

REQUEST_FIELDS = {"contents", "systemInstruction", "generationConfig", "tools", "toolConfig", "safetySettings"}
CONFIG_FIELDS = {
    "temperature",
    "topP",
    "topK",
    "maxOutputTokens",
    "stopSequences",
    "candidateCount",
    "presencePenalty",
    "frequencyPenalty",
    "seed",
    "responseMimeType",
    "responseSchema",
    "thinkingConfig",
}
PART_DATA = {"text", "inlineData", "fileData", "functionCall", "functionResponse"}
SCHEMA_FIELDS = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "properties",
    "required",
    "items",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "anyOf",
    "propertyOrdering",
    "default",
    "example",
}
SIGNATURE = base64.b64encode(b"fake thought signature").decode()


def request_errors(body: Any, model: str) -> list[str]:
    """Why Gemini would refuse `body` (empty: it is fine)."""
    if not isinstance(body, dict):
        return ["Invalid JSON payload received."]
    errors = [
        f'Invalid JSON payload received. Unknown name "{k}": Cannot find field.'
        for k in body
        if k not in REQUEST_FIELDS
    ]
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        errors.append("* GenerateContentRequest.contents: contents is not specified")
        return errors
    for i, turn in enumerate(contents):
        if turn.get("role") not in ("user", "model"):
            errors.append(f"Please use a valid role: user, model. (contents[{i}])")
        parts = turn.get("parts")
        if not parts:
            errors.append(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
        for part in parts or []:
            errors += _part_errors(part, i, gemini_3=model.startswith("gemini-3") and turn.get("role") == "model")
    for key in body.get("generationConfig") or {}:
        if key not in CONFIG_FIELDS:
            errors.append(f"Invalid JSON payload received. Unknown name \"{key}\" at 'generation_config'")
    for tool in body.get("tools") or []:
        for declaration in tool.get("functionDeclarations") or []:
            errors += _schema_errors(declaration.get("parameters"), f"function {declaration.get('name')}")
    return errors


def _part_errors(part: dict, index: int, *, gemini_3: bool) -> list[str]:
    data = [k for k in part if k in PART_DATA]
    if len(data) != 1:
        return [f"contents[{index}]: a part must hold exactly one of {sorted(PART_DATA)}, got {sorted(part)}"]
    unknown = [k for k in part if k not in PART_DATA | {"thought", "thoughtSignature"}]
    if unknown:
        return [f"Invalid JSON payload received. Unknown name \"{unknown[0]}\" at 'contents[{index}].parts'"]
    if "functionResponse" in part and not isinstance(part["functionResponse"].get("response"), dict):
        return [f"contents[{index}]: functionResponse.response must be an object"]
    if "functionCall" in part and gemini_3 and part.get("thoughtSignature") != SIGNATURE:
        return [f"Function call is missing a thought_signature in functionCall parts (contents[{index}])."]
    if "inlineData" in part:
        try:
            base64.b64decode(part["inlineData"]["data"], validate=True)
        except (KeyError, ValueError):
            return [f"contents[{index}]: inlineData.data is not base64"]
    return []


def _schema_errors(schema: Any, where: str) -> list[str]:
    if not isinstance(schema, dict):
        return []
    errors = [f'Invalid JSON payload received. Unknown name "{k}" in {where}' for k in schema if k not in SCHEMA_FIELDS]
    if isinstance(schema.get("type"), list):
        errors.append(f"{where}: type must be a string")
    for sub in (schema.get("properties") or {}).values():
        errors += _schema_errors(sub, where)
    errors += _schema_errors(schema.get("items"), where)
    return errors


# --- answers --------------------------------------------------------------------------------------


def default(body: dict) -> _Script:
    """What Gemini would plausibly say, deterministically.

    A function call to the first tool (or the one allowed) when the mode is ANY or the user asks
    about the weather; after a function response, "The tool says: <its content>"; an image gets
    "I see an image: <mime> (<n> bytes)"; otherwise "Echo: <last user text>".
    """
    contents = body["contents"]
    words = sum(len(p.get("text", "x").split()) for turn in contents for p in turn["parts"])
    prompt_tokens = words + 2 * len(contents)
    last = contents[-1]["parts"]
    text = " ".join(p["text"] for p in last if "text" in p)
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    declarations = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
    allowed = calling.get("allowedFunctionNames") or []
    responses = [p["functionResponse"] for p in last if "functionResponse" in p]
    wants = calling.get("mode") == "ANY" or (calling.get("mode") != "NONE" and "weather" in text.lower())
    if declarations and wants and not responses:
        declaration = next((d for d in declarations if d["name"] in allowed), declarations[0])
        call = {"name": declaration["name"], "args": _arguments(declaration)}
        return _Script(tool_calls=[call], prompt_tokens=prompt_tokens, completion_tokens=12)
    if responses:
        said = responses[-1]["response"]
        answer = f"The tool says: {said.get('content', json.dumps(said))}"
    elif images := [p["inlineData"] for p in last if "inlineData" in p]:
        answer = f"I see an image: {images[0]['mimeType']} ({len(base64.b64decode(images[0]['data']))} bytes)"
    elif files := [p["fileData"] for p in last if "fileData" in p]:
        answer = f"I see a file: {files[0]['fileUri']} ({files[0]['mimeType']})"
    else:
        answer = f"Echo: {text}"
    return _Script(chunks=words_of(answer), prompt_tokens=prompt_tokens)


def _arguments(declaration: dict) -> dict:
    properties = (declaration.get("parameters") or {}).get("properties") or {}
    samples = {"STRING": "Paris", "NUMBER": 1, "INTEGER": 1, "BOOLEAN": True}
    return {name: samples.get(str(spec.get("type", "string")).upper(), "Paris") for name, spec in properties.items()}


def words_of(text: str) -> list[str]:
    """Split text into stream pieces that join back to it: "a b" -> ["a", " b"]."""
    return re.findall(r"\s*\S+\s*$|\s*\S+", text)


def _usage(plan: _Script, *, final: bool = True) -> dict:
    prompt = plan.prompt_tokens or 0
    completion = plan.completion_tokens
    if completion is None:
        completion = len([c for c in plan.chunks if c]) + 12 * len(plan.tool_calls)
    if not final:
        return {"promptTokenCount": prompt, "totalTokenCount": prompt}
    return {"promptTokenCount": prompt, "candidatesTokenCount": completion, "totalTokenCount": prompt + completion}


def _call_part(call: dict) -> dict:
    return {"functionCall": {"name": call["name"], "args": call.get("args", {})}, "thoughtSignature": SIGNATURE}


def _candidate(parts: list[dict], finish: str | None) -> dict:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return candidate


def response(model: str, plan: _Script) -> dict:
    """A whole generateContent answer."""
    text = "".join(plan.chunks)
    parts = ([{"text": text}] if text else []) + [_call_part(c) for c in plan.tool_calls]
    return {
        "candidates": [_candidate(parts, plan.finish_reason or "STOP")],
        "usageMetadata": _usage(plan),
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:20],
    }


def stream_events(model: str, plan: _Script) -> list[dict]:
    """streamGenerateContent's events: one per text piece, the calls whole, finishReason and usage last."""
    head = {"modelVersion": model, "responseId": uuid.uuid4().hex[:20]}
    pieces: list[list[dict]] = [[{"text": t}] for t in plan.chunks if t]
    if plan.tool_calls:
        pieces.append([_call_part(c) for c in plan.tool_calls])
    pieces = pieces or [[{"text": ""}]]
    events = [{**head, "candidates": [_candidate(p, None)], "usageMetadata": _usage(plan, final=False)} for p in pieces]
    events[-1] = {
        **head,
        "candidates": [_candidate(pieces[-1], plan.finish_reason or "STOP")],
        "usageMetadata": _usage(plan),
    }
    return events


def blocked(reason: str, prompt_tokens: int = 4) -> dict:
    """The answer to a prompt the safety filters refuse: no candidates, only promptFeedback."""
    return {
        "promptFeedback": {
            "blockReason": reason,
            "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}],
        },
        "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens},
    }


STATUS_NAMES = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token."),
    403: (
        "PERMISSION_DENIED",
        "Permission 'aiplatform.endpoints.predict' denied on resource "
        "'//aiplatform.googleapis.com/projects/secret-project-4711'.",
    ),
    404: ("NOT_FOUND", "Publisher Model was not found or your project does not have access to it."),
    429: ("RESOURCE_EXHAUSTED", "Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute."),
    500: ("INTERNAL", "Internal error encountered."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}


def error(status: int, message: str | None = None, *, reason: str | None = None) -> dict:
    """Google's error envelope for `status`."""
    name, default_message = STATUS_NAMES.get(status, ("UNKNOWN", "Unknown error."))
    body: dict[str, Any] = {"code": status, "message": message or default_message, "status": name}
    if reason:
        body["details"] = [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com"}
        ]
    return {"error": body}
