"""Azure OpenAI's differences from OpenAI, as pure functions: URLs, API versions, filter results, errors."""

import json

import pytest

from proxy.providers import azure, azure_auth


def test_the_url_names_the_deployment_and_the_api_version():
    url = azure.deployment_url("https://res.openai.azure.com/", "gpt-4o", "/chat/completions", "2024-10-21")
    assert url == "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"


def test_an_api_base_ending_in_openai_is_not_doubled_and_names_are_escaped():
    url = azure.deployment_url("https://res.openai.azure.com/openai", "my dep/1", "/embeddings", "2024-10-21")
    assert url == "https://res.openai.azure.com/openai/deployments/my%20dep%2F1/embeddings?api-version=2024-10-21"


@pytest.mark.parametrize(
    ("version", "accepts"),
    [
        ("2024-02-01", False),
        ("2024-08-01-preview", False),
        ("2024-09-01-preview", True),
        ("2024-10-21", True),
        ("2025-04-01-preview", True),
    ],
)
def test_stream_options_only_from_api_version_2024_09_01(version, accepts):
    assert azure.accepts_stream_options(version) is accepts


def test_the_prompt_filter_chunk_is_an_annotation_but_a_usage_chunk_is_not():
    assert azure.is_filter_annotation({"choices": [], "prompt_filter_results": [{"prompt_index": 0}]})
    assert not azure.is_filter_annotation({"choices": [], "usage": {"prompt_tokens": 1}})
    assert not azure.is_filter_annotation({"choices": [{"index": 0, "delta": {}}]})


def content_filter_body() -> bytes:
    return json.dumps(
        {
            "error": {
                "message": "The response was filtered due to the prompt triggering Azure OpenAI's content policy.",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": {
                        "hate": {"filtered": False, "severity": "safe"},
                        "violence": {"filtered": True, "severity": "medium"},
                        "jailbreak": {"filtered": True, "detected": True},
                    },
                },
            }
        }
    ).encode()


def test_a_filtered_prompt_is_a_400_content_filter_naming_what_tripped():
    error = azure.azure_error(400, content_filter_body(), None)
    assert (error.status, error.code, error.param, error.provider) == (400, "content_filter", "prompt", "azure")
    assert error.message.endswith("(filtered: violence (medium), jailbreak)")
    assert "content policy" in error.message


def test_azures_numeric_codes_are_dropped_and_named_ones_kept():
    rate = azure.azure_error(429, b'{"error": {"code": "429", "message": "Please retry after 6 seconds."}}', "6")
    assert (rate.status, rate.code, rate.retry_after, rate.message) == (429, None, "6", "Please retry after 6 seconds.")
    missing = azure.azure_error(
        404, b'{"error": {"code": "DeploymentNotFound", "message": "no such deployment"}}', None
    )
    assert (missing.status, missing.code) == (404, "DeploymentNotFound")
    opaque = azure.azure_error(502, b"Bad Gateway", None)
    assert (opaque.status, opaque.message) == (502, "Bad Gateway")


def test_an_entra_refusal_names_the_error_code_but_not_the_description():
    answer = {
        "error": "invalid_client",
        "error_description": "AADSTS7000215: Invalid client secret provided for app 'my-app-id'. Trace ID: 1",
    }
    error = azure_auth.refused(401, answer)
    assert error.status == 401  # reported as the deployment's auth problem (502 upstream_auth_error)
    assert "invalid_client, AADSTS7000215" in error.message
    assert "my-app-id" not in error.message and "Trace" not in error.message


def test_the_client_credentials_secret_never_prints():
    credentials = azure_auth.ClientCredentials("tenant", "client", "s3cret-value")
    assert "s3cret-value" not in repr(credentials)
    assert credentials.token_url == "https://login.microsoftonline.com/tenant/oauth2/v2.0/token"
