"""Run one legacy `mistralai==0.4.2` call against Tollgate and print the result as JSON.

The legacy SDK's pins clash with the current SDK, so it lives in its own virtualenv
(.venv-legacy, made by `make test`); tests run this script with that interpreter.
Usage: legacy_client.py ENDPOINT KEY OPERATION
"""

import json
import sys

from mistralai.client import MistralClient
from mistralai.exceptions import MistralAPIException
from mistralai.models.chat_completion import ChatMessage


def main(endpoint: str, key: str, operation: str, model: str = "mistral-small-latest") -> dict:
    client = MistralClient(api_key=key, endpoint=endpoint, max_retries=1, timeout=20)
    if operation == "chat":
        # The reference page's "Basic Chat Completion", unchanged but for the endpoint and key.
        r = client.chat(
            model="mistral-small-latest",
            messages=[{"role": "user", "content": "this is a test request, write a short poem"}],
        )
        return {
            "content": r.choices[0].message.content,
            "finish_reason": r.choices[0].finish_reason,
            "total_tokens": r.usage.total_tokens,
        }
    if operation == "chat_model":
        r = client.chat(model=model, messages=[ChatMessage(role="user", content="Hi")])
        return {"content": r.choices[0].message.content}
    if operation == "chat_messages":
        r = client.chat(model="mistral-nemo", messages=[ChatMessage(role="user", content="Hi")])
        return {"content": r.choices[0].message.content}
    if operation == "chat_tools":
        tools = [
            {
                "type": "function",
                "function": {
                    "name": "get_current_weather",
                    "description": "weather",
                    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
                },
            }
        ]
        r = client.chat(
            model="mistral-small-latest",
            tool_choice="any",
            tools=tools,
            messages=[ChatMessage(role="user", content="Weather in Boston?")],
        )
        call = r.choices[0].message.tool_calls[0]
        return {
            "content": r.choices[0].message.content,
            "tool": call.function.name,
            "id": call.id,
            "finish_reason": r.choices[0].finish_reason,
        }
    if operation == "chat_stream":
        messages = [ChatMessage(role="user", content="Hi")]
        chunks = list(client.chat_stream(model="mistral-small-latest", messages=messages))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return {"text": text, "usage": chunks[-1].usage.total_tokens if chunks[-1].usage else None}
    if operation == "embeddings":
        r = client.embeddings(model="mistral-embed", input=["hello", "world"])
        return {"count": len(r.data), "dims": len(r.data[0].embedding), "id": r.id}
    if operation == "completion":
        r = client.completion(model="codestral-latest", prompt="def add(a, b):", suffix="\n")
        return {"content": r.choices[0].message.content}
    if operation == "completion_stream":
        chunks = list(client.completion_stream(model="codestral-latest", prompt="def add(a, b):"))
        return {"text": "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)}
    if operation == "list_models":
        return {"ids": [m.id for m in client.list_models().data]}
    raise SystemExit(f"unknown operation {operation}")


if __name__ == "__main__":
    try:
        print(json.dumps(main(*sys.argv[1:5])))
    except MistralAPIException as e:
        print(json.dumps({"error": str(e), "status": e.http_status}))
