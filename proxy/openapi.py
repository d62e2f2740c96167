"""The LLM API in the OpenAPI schema (/openapi.json, /docs).

The proxy routes are plain Django views (the hot path skips DRF), so drf-spectacular cannot see
them; this hook adds them, with the fields Tollgate acts on. Everything else in a body is
passed to the provider as sent, which the schemas say with `additionalProperties`.
"""

from typing import Any

ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": "string", "nullable": True},
                "code": {"type": "string", "nullable": True},
            },
            "required": ["message", "type", "param", "code"],
        }
    },
}
MESSAGE = {
    "type": "object",
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}], "nullable": True},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
        "tool_call_id": {"type": "string"},
    },
    "required": ["role"],
}
BODIES: dict[str, dict[str, Any]] = {
    "chat/completions": {
        "summary": "Chat completion (JSON, or SSE with stream: true)",
        "required": ["model", "messages"],
        "properties": {
            "model": {"type": "string"},
            "messages": {"type": "array", "items": MESSAGE, "minItems": 1},
            "stream": {"type": "boolean"},
            "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
            "max_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number", "minimum": 0},
            "tools": {"type": "array", "items": {"type": "object"}},
            "tool_choice": {"oneOf": [{"type": "string"}, {"type": "object"}]},
        },
    },
    "completions": {
        "summary": "Text completion (FIM for Codestral models)",
        "required": ["model", "prompt"],
        "properties": {
            "model": {"type": "string"},
            "prompt": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "suffix": {"type": "string"},
            "stream": {"type": "boolean"},
            "max_tokens": {"type": "integer", "minimum": 1},
        },
    },
    "fim/completions": {
        "summary": "Fill-in-the-middle (Mistral's API), answered chat-shaped",
        "required": ["model", "prompt"],
        "properties": {
            "model": {"type": "string"},
            "prompt": {"type": "string"},
            "suffix": {"type": "string"},
            "stream": {"type": "boolean"},
            "max_tokens": {"type": "integer", "minimum": 1},
        },
    },
    "embeddings": {
        "summary": "Embeddings",
        "required": ["model", "input"],
        "properties": {
            "model": {"type": "string"},
            "input": {"oneOf": [{"type": "string"}, {"type": "array"}]},
            "encoding_format": {"type": "string", "enum": ["float", "base64"]},
        },
    },
}
ENDPOINT = {
    "type": "object",
    "properties": {
        "model": {"type": "string"},
        "model_name": {"type": "string"},
        "api_base": {"type": "string"},
        "model_id": {"type": "string"},
        "deployment_id": {"type": "integer"},
        "error": {"type": "string"},
    },
}
HEALTH = {
    "type": "object",
    "properties": {
        "healthy_endpoints": {"type": "array", "items": ENDPOINT},
        "unhealthy_endpoints": {"type": "array", "items": ENDPOINT},
        "healthy_count": {"type": "integer"},
        "unhealthy_count": {"type": "integer"},
    },
    "required": ["healthy_endpoints", "unhealthy_endpoints", "healthy_count", "unhealthy_count"],
}
ERRORS = {
    str(status): {"description": text, "content": {"application/json": {"schema": ERROR}}}
    for status, text in [
        (400, "Bad request: the message names the parameter"),
        (401, "Missing, unknown, blocked or expired key"),
        (403, "The key may not use this model"),
        (404, "Unknown model"),
        (413, "Body too large"),
        (429, "Rate limited or budget exceeded"),
        (502, "Provider error"),
        (504, "Provider timeout"),
    ]
}


def add_llm_api(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing hook: add the LLM API's paths under /v1."""
    paths = result.setdefault("paths", {})
    security: list[dict[str, list[str]]] = [{"bearer": []}]
    for route, spec in BODIES.items():
        schema = {
            "type": "object",
            "required": spec["required"],
            "properties": spec["properties"],
            "additionalProperties": True,
        }
        paths[f"/v1/{route}"] = {
            "post": {
                "tags": ["LLM API"],
                "summary": spec["summary"],
                "operationId": "v1_" + route.replace("/", "_"),
                "security": security,
                "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
                "responses": {"200": {"description": "The provider's answer, OpenAI-shaped"}, **ERRORS},
            }
        }
    paths["/v1/models"] = {
        "get": {
            "tags": ["LLM API"],
            "summary": "Models this key may use",
            "operationId": "v1_models",
            "security": security,
            "responses": {"200": {"description": "A list of model cards"}, **ERRORS},
        }
    }
    paths["/v1/models/{model_id}"] = {
        "get": {
            "tags": ["LLM API"],
            "summary": "One model card",
            "operationId": "v1_model",
            "security": security,
            "parameters": [{"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "A model card"}, **ERRORS},
        }
    }
    for probe in ("liveliness", "readiness"):
        paths[f"/health/{probe}"] = {
            "get": {
                "tags": ["Health"],
                "summary": f"Health: {probe}",
                "operationId": f"health_{probe}",
                "security": [],
                "responses": {"200": {"description": "OK"}},
            }
        }
    paths["/health"] = {
        "get": {
            "tags": ["Health"],
            "summary": "Model health: a real minimal call to each deployment (master key or proxy_admin)",
            "operationId": "health_models",
            "security": security,
            "parameters": [{"name": "model", "in": "query", "required": False, "schema": {"type": "string"}}],
            "responses": {
                "200": {
                    "description": "healthy_endpoints, unhealthy_endpoints (with error), and their counts",
                    "content": {"application/json": {"schema": HEALTH}},
                },
                **{status: ERRORS[status] for status in ("401", "403", "404")},
            },
        }
    }
    paths["/metrics"] = {
        "get": {
            "tags": ["Health"],
            "summary": "Prometheus metrics (open unless TOLLGATE_METRICS_REQUIRE_KEY=1)",
            "operationId": "metrics",
            "security": [],
            "responses": {"200": {"description": "Prometheus text exposition", "content": {"text/plain": {}}}},
        }
    }
    components = result.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer"}
    return result
