"""The OpenAPI schema documents the LLM API and the docs page renders."""

import json


def test_schema_lists_the_llm_api(client, db):
    r = client.get("/openapi.json")

    assert r.status_code == 200
    paths = json.loads(r.content)["paths"]
    for route in ("/v1/chat/completions", "/v1/completions", "/v1/fim/completions", "/v1/embeddings", "/v1/models"):
        assert route in paths
    chat = paths["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["required"] == ["model", "messages"]
    assert "429" in chat["responses"]


def test_docs_page_renders(client, db):
    r = client.get("/docs")
    assert r.status_code == 200
    assert b"openapi.json" in r.content
