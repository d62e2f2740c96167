"""The `azure/<deployment>` provider through the views, against the fake Azure OpenAI resource on 127.0.0.1.

The fake checks Azure's own wire: the deployment in the URL, the `api-version` query, the `api-key`
header or an Entra ID bearer token that its token endpoint issued.
"""

from collections.abc import Iterator
from decimal import Decimal

import pytest

from billing.models import UsageRecord
from proxy.models import Deployment
from proxy.providers import azure_auth
from tests.conftest import HI
from tests.fakes.azure import FakeAzure
from tests.proxy.test_chat_api import WEATHER_TOOL, events, post

GPT_4O = (Decimal("2.5") / 1_000_000, Decimal("10") / 1_000_000)  # OpenAI's list price, per token in and out
AZURE_VARIABLES = (
    "AZURE_API_KEY",
    "AZURE_API_BASE",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_API_VERSION",
    "OPENAI_API_VERSION",
    "AZURE_AD_TOKEN",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_AUTHORITY_HOST",
)


@pytest.fixture(scope="module")
def azure_server() -> Iterator[FakeAzure]:
    with FakeAzure.running() as server:
        yield server


@pytest.fixture
def fake_azure(azure_server: FakeAzure, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAzure]:
    for name in AZURE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    azure_auth.forget()
    azure_server.reset()
    azure_server.token_lifetime = 3600
    yield azure_server
    azure_server.reset()
    azure_auth.forget()


@pytest.fixture
def azure_for(db):
    """Create a deployment of the fake resource (by default `azure/gpt-4o` with the api key)."""

    def make(fake: FakeAzure, *, alias: str = "gpt", deployment: str = "gpt-4o", **fields) -> Deployment:
        fields.setdefault("api_key", FakeAzure.API_KEY)
        fields.setdefault("api_version", "2024-10-21")
        fields.setdefault("api_base", fake.root)
        return Deployment.objects.create(model_name=alias, litellm_model=f"azure/{deployment}", **fields)

    return make


def entra(fake: FakeAzure, **overrides) -> dict:
    """A deployment's fields for the client-credentials flow against the fake's token endpoint."""
    return {
        "api_key": "",
        "params": {
            "tenant_id": FakeAzure.TENANT_ID,
            "client_id": FakeAzure.CLIENT_ID,
            "azure_authority_host": fake.root,
        },
        "credentials": {"client_secret": FakeAzure.CLIENT_SECRET},
        **overrides,
    }


# --- chat -----------------------------------------------------------------------------------------


def test_chat_goes_to_the_deployment_url_with_the_api_key_and_is_priced_as_openai(client, auth, fake_azure, azure_for):
    azure_for(fake_azure)
    fake_azure.reply("Bonjour!", prompt_tokens=7, completion_tokens=2)

    r = post(client, auth, {"model": "gpt", "messages": HI, "temperature": 0.2})

    assert r.status_code == 200
    body = r.json()
    assert body["choices"][0]["message"]["content"] == "Bonjour!"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["model"] == "gpt-4o-2024-08-06"  # the model behind the deployment, as Azure reports it
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    sent = fake_azure.last_request
    assert sent.path == "/openai/deployments/gpt-4o/chat/completions"
    assert sent.headers["api-key"] == FakeAzure.API_KEY
    assert "authorization" not in sent.headers
    assert sent.json["temperature"] == 0.2
    row = UsageRecord.objects.get()
    assert row.cost == 7 * GPT_4O[0] + 2 * GPT_4O[1]
    assert row.price_source.startswith("list:openai/gpt-4o")
    assert Decimal(r["x-tollgate-cost"]) == row.cost


def test_a_deployment_named_otherwise_is_priced_by_its_base_model(client, auth, fake_azure, azure_for):
    azure_for(fake_azure, deployment="prod-chat", model_info={"base_model": "azure/gpt-4o"})
    fake_azure.reply("Hi", prompt_tokens=10, completion_tokens=10)

    assert post(client, auth, {"model": "gpt", "messages": HI}).status_code == 200

    row = UsageRecord.objects.get()
    assert row.cost == 10 * GPT_4O[0] + 10 * GPT_4O[1]
    assert row.price_source.startswith("base_model:openai/gpt-4o")


def test_tool_calls_pass_through(client, auth, fake_azure, azure_for):
    azure_for(fake_azure)
    fake_azure.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])

    choice = post(client, auth, {"model": "gpt", "messages": HI, "tools": [WEATHER_TOOL]}).json()["choices"][0]

    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == ""
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert fake_azure.last_request.json["tools"] == [WEATHER_TOOL]


# --- streams --------------------------------------------------------------------------------------


def test_stream_drops_the_prompt_filter_chunk_and_is_priced_from_the_usage_it_asked_for(
    client, auth, fake_azure, azure_for
):
    azure_for(fake_azure)
    fake_azure.reply_stream(["Hel", "lo"], prompt_tokens=12, completion_tokens=2)

    r = post(client, auth, {"model": "gpt", "messages": HI, "stream": True, "stream_options": {"include_usage": True}})

    payloads = events(r)
    assert payloads[-1] == "[DONE]"
    chunks = payloads[:-2]
    assert all(c["choices"] for c in chunks)  # no prompt-filter annotation
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello"
    assert payloads[-2]["usage"] == {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}
    assert fake_azure.last_request.json["stream_options"] == {"include_usage": True}
    row = UsageRecord.objects.get()
    assert (row.prompt_tokens, row.completion_tokens, row.tokens_estimated) == (12, 2, False)


def test_an_api_version_before_stream_options_is_not_sent_them_and_the_tokens_are_estimated(
    client, auth, fake_azure, azure_for
):
    azure_for(fake_azure, api_version="2024-06-01")
    fake_azure.reply_stream(["Hel", "lo"])

    r = post(client, auth, {"model": "gpt", "messages": HI, "stream": True, "stream_options": {"include_usage": True}})

    payloads = events(r)
    assert payloads[-1] == "[DONE]"
    assert "stream_options" not in fake_azure.last_request.json
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in payloads[:-2]) == "Hello"
    row = UsageRecord.objects.get()
    assert row.tokens_estimated and row.completion_tokens > 0


# --- credentials ----------------------------------------------------------------------------------


def test_client_credentials_get_a_bearer_token_that_is_cached(client, auth, fake_azure, azure_for):
    azure_for(fake_azure, **entra(fake_azure))

    for _ in range(3):
        assert post(client, auth, {"model": "gpt", "messages": HI}).status_code == 200

    assert fake_azure.token_requests == 1
    sent = fake_azure.last_request
    assert sent.headers["authorization"].startswith("Bearer eyJ")
    assert "api-key" not in sent.headers


def test_a_token_close_to_expiry_is_fetched_again(client, auth, fake_azure, azure_for):
    azure_for(fake_azure, **entra(fake_azure))
    fake_azure.token_lifetime = int(azure_auth.REFRESH_MARGIN)  # already within the margin when issued

    for _ in range(2):
        assert post(client, auth, {"model": "gpt", "messages": HI}).status_code == 200

    assert fake_azure.token_requests == 2


def test_client_credentials_from_the_environment_and_the_authority_variable(
    client, auth, fake_azure, azure_for, monkeypatch
):
    monkeypatch.setenv("AZURE_TENANT_ID", FakeAzure.TENANT_ID)
    monkeypatch.setenv("AZURE_CLIENT_ID", FakeAzure.CLIENT_ID)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", FakeAzure.CLIENT_SECRET)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", fake_azure.root)
    azure_for(fake_azure, api_key="")

    assert post(client, auth, {"model": "gpt", "messages": HI}).status_code == 200
    assert fake_azure.token_requests == 1


def test_a_static_azure_ad_token_as_an_environment_reference(client, auth, fake_azure, azure_for, monkeypatch):
    monkeypatch.setenv("MY_AD_TOKEN", FakeAzure.AD_TOKEN)
    azure_for(fake_azure, api_key="", credentials={"azure_ad_token": "os.environ/MY_AD_TOKEN"})

    assert post(client, auth, {"model": "gpt", "messages": HI}).status_code == 200
    assert fake_azure.last_request.headers["authorization"] == f"Bearer {FakeAzure.AD_TOKEN}"


def test_the_api_key_from_the_environment(client, auth, fake_azure, azure_for, monkeypatch):
    monkeypatch.setenv("AZURE_API_KEY", FakeAzure.API_KEY)
    monkeypatch.setenv("AZURE_API_BASE", fake_azure.root)
    azure_for(fake_azure, api_key="", api_base="")

    assert post(client, auth, {"model": "gpt", "messages": HI}).status_code == 200
    assert fake_azure.last_request.headers["api-key"] == FakeAzure.API_KEY


def test_a_wrong_client_secret_is_a_502_that_does_not_leak_it(client, auth, fake_azure, azure_for):
    azure_for(fake_azure, **entra(fake_azure, credentials={"client_secret": "wrong-secret-value-42"}))

    r = post(client, auth, {"model": "gpt", "messages": HI})

    assert r.status_code == 502
    error = r.json()["error"]
    assert error["code"] == "upstream_auth_error"
    assert "invalid_client, AADSTS7000215" in error["message"]
    assert "wrong-secret-value-42" not in r.content.decode()
    assert FakeAzure.CLIENT_ID not in r.content.decode()  # Entra's description names the app: not repeated


def test_a_wrong_api_key_is_a_502_upstream_auth_error(client, auth, fake_azure, azure_for):
    azure_for(fake_azure, api_key="not-the-key-000")

    r = post(client, auth, {"model": "gpt", "messages": HI})

    assert (r.status_code, r.json()["error"]["code"]) == (502, "upstream_auth_error")
    assert "not-the-key-000" not in r.content.decode()


def test_incomplete_client_credentials_name_what_is_missing(client, auth, fake_azure, azure_for):
    azure_for(fake_azure, api_key="", params={"tenant_id": FakeAzure.TENANT_ID})

    r = post(client, auth, {"model": "gpt", "messages": HI})

    assert r.status_code == 500
    assert r.json()["error"]["code"] == "provider_misconfigured"
    assert "client_id, client_secret not set" in r.json()["error"]["message"]


def test_no_api_base_is_a_clear_misconfiguration(client, auth, fake_azure, azure_for):
    azure_for(fake_azure, api_base="")

    r = post(client, auth, {"model": "gpt", "messages": HI})

    assert (r.status_code, r.json()["error"]["code"]) == (500, "provider_misconfigured")
    assert "api_base" in r.json()["error"]["message"]


# --- content filter and errors --------------------------------------------------------------------


def test_a_filtered_prompt_is_a_400_content_filter(client, auth, fake_azure, azure_for):
    azure_for(fake_azure)
    fake_azure.filter_prompt(("violence", "hate"))

    r = post(client, auth, {"model": "gpt", "messages": HI})

    assert r.status_code == 400
    error = r.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "content_filter", "prompt")
    assert "content management policy" in error["message"]
    assert "hate (high)" in error["message"] and "violence (high)" in error["message"]
    assert UsageRecord.objects.get().cost == 0


def test_a_filtered_completion_keeps_its_finish_reason(client, auth, fake_azure, azure_for):
    azure_for(fake_azure)
    fake_azure.reply("I can", finish_reason="content_filter", prompt_tokens=5, completion_tokens=2)

    choice = post(client, auth, {"model": "gpt", "messages": HI}).json()["choices"][0]

    assert choice["finish_reason"] == "content_filter"
    assert choice["content_filter_results"]["violence"]["filtered"] is True
    assert UsageRecord.objects.get().completion_tokens == 2  # what was generated is billed


def test_an_unknown_deployment_is_a_404(client, auth, fake_azure, azure_for):
    azure_for(fake_azure, deployment="no-such-deployment")

    r = post(client, auth, {"model": "gpt", "messages": HI})

    assert (r.status_code, r.json()["error"]["code"]) == (404, "DeploymentNotFound")


def test_throttling_is_a_429_with_retry_after(client, auth, fake_azure, azure_for):
    azure_for(fake_azure)
    fake_azure.fail(429, headers={"retry-after": "6"})

    r = post(client, auth, {"model": "gpt", "messages": HI})

    assert r.status_code == 429
    assert r["Retry-After"] == "6"
    assert r.json()["error"]["code"] == "upstream_rate_limited"
    assert "retry after 6 seconds" in r.json()["error"]["message"]


# --- other endpoints ------------------------------------------------------------------------------


def test_embeddings(client, auth, fake_azure, azure_for):
    azure_for(fake_azure, alias="embed", deployment="text-embedding-3-small")

    r = post(client, auth, {"model": "embed", "input": ["one", "two"]}, path="/v1/embeddings")

    assert r.status_code == 200
    assert len(r.json()["data"]) == 2
    assert fake_azure.last_request.path == "/openai/deployments/text-embedding-3-small/embeddings"


def test_text_completions(client, auth, fake_azure, azure_for):
    azure_for(fake_azure, alias="instruct", deployment="gpt-35-turbo-instruct")

    r = post(client, auth, {"model": "instruct", "prompt": "Say hi"}, path="/v1/completions")

    assert r.status_code == 200
    assert r.json()["choices"][0]["text"] == "Echo: Say hi"
    assert fake_azure.last_request.path == "/openai/deployments/gpt-35-turbo-instruct/completions"
