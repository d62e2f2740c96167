"""Retries, fallbacks, cooldowns and timeouts, all before the first byte reaches the caller.

Through the view with the Django test client, against fake Mistral servers on 127.0.0.1 that
fail, hang or cut streams on command. The test settings make a failure final
(TOLLGATE_NUM_RETRIES=0); each test that retries says so in its router_settings.
"""

import json
import time

import pytest

from billing.models import UsageRecord
from proxy.models import LoadedConfig
from tests.conftest import HI
from tests.fakes.mistral import FakeMistral

CHAT = "/v1/chat/completions"
CONTEXT_TOO_LONG = {
    "object": "error",
    "message": "Prompt contains 40000 tokens, too large for model with 32768 maximum context length",
    "type": "invalid_request_error",
    "param": None,
    "code": "3051",
}
CONTENT_REFUSED = {
    "object": "error",
    "message": "The prompt was refused by the content policy",
    "type": "invalid_request_error",
    "param": None,
    "code": "content_policy_violation",
}


def chat(client, auth, model="group", **fields):
    body = {"model": model, "messages": HI, **fields}
    return client.post(CHAT, data=json.dumps(body), content_type="application/json", **auth)


def configure(**router_settings) -> None:
    LoadedConfig.objects.create(path="tests.yaml", sha256="0" * 64, router_settings=router_settings)


def sse(response) -> list:
    raw = b"".join(response.streaming_content).decode()
    return [block.removeprefix("data: ") for block in raw.split("\n\n") if block]


@pytest.fixture
def other_fake():
    with FakeMistral.running() as server:
        yield server


# --- retries ----------------------------------------------------------------------------------------


def test_a_503_is_retried_and_the_second_attempt_answers(client, auth, fake_mistral, deployment_for):
    configure(num_retries=2)
    deployment_for(fake_mistral, alias="group")
    fake_mistral.fail(503)

    r = chat(client, auth)

    assert r.status_code == 200, r.content
    assert r["x-tollgate-attempts"] == "2"
    assert len(fake_mistral.requests) == 2
    row = UsageRecord.objects.get()
    assert (row.status, row.attempts, row.model_group) == (200, 2, "group")


def test_a_retry_goes_to_another_deployment_of_the_group(client, auth, fake_mistral, other_fake, deployment_for):
    configure(num_retries=1)
    first = deployment_for(fake_mistral, alias="group", order=1)
    second = deployment_for(other_fake, alias="group", order=2)
    fake_mistral.fail(500)

    r = chat(client, auth)

    assert r.status_code == 200
    assert r["x-tollgate-deployment"] == str(second.pk)
    assert (len(fake_mistral.requests), len(other_fake.requests)) == (1, 1)
    assert UsageRecord.objects.get().deployment_id == second.pk != first.pk


def test_a_providers_retry_after_is_waited_for(client, auth, fake_mistral, deployment_for):
    configure(num_retries=1)
    deployment_for(fake_mistral, alias="group")
    fake_mistral.fail(429, headers={"retry-after": "1"})

    started = time.monotonic()
    r = chat(client, auth)
    waited = time.monotonic() - started

    assert r.status_code == 200
    assert 1.0 <= waited < 3.0, waited


def test_a_long_retry_after_moves_to_the_next_deployment_at_once(
    client, auth, fake_mistral, other_fake, deployment_for
):
    configure(num_retries=1)
    limited = deployment_for(fake_mistral, alias="group", order=1)
    other = deployment_for(other_fake, alias="group", order=2)
    fake_mistral.fail(429, headers={"retry-after": "120"})

    started = time.monotonic()
    r = chat(client, auth)

    assert (r.status_code, r["x-tollgate-deployment"]) == (200, str(other.pk))
    assert time.monotonic() - started < 0.5  # not waited for
    assert chat(client, auth)["x-tollgate-deployment"] == str(other.pk)  # the limited one cools down at once
    assert len(fake_mistral.requests) == 1 and limited.pk != other.pk


def test_a_long_retry_after_on_a_groups_only_deployment_is_answered_at_once(client, auth, fake_mistral, deployment_for):
    configure(num_retries=2)
    deployment_for(fake_mistral, alias="group")
    fake_mistral.fail(429, headers={"retry-after": "120"})

    r = chat(client, auth)

    assert r.status_code == 429
    assert r["Retry-After"] == "120"  # the provider's, passed on
    assert len(fake_mistral.requests) == 1


def test_retries_stop_at_num_retries_and_the_last_error_is_answered(client, auth, fake_mistral, deployment_for):
    configure(num_retries=1, retry_after=0)
    deployment_for(fake_mistral, alias="group")
    for _ in range(3):
        fake_mistral.fail(503)

    r = chat(client, auth)

    assert r.status_code == 503
    assert r.json()["error"]["code"] == "1000"  # Mistral's code, passed through
    assert len(fake_mistral.requests) == 2
    assert UsageRecord.objects.get().attempts == 2


def test_a_400_the_caller_caused_is_not_retried(client, auth, fake_mistral, other_fake, deployment_for):
    configure(num_retries=3, fallbacks=[{"group": ["backup"]}])
    deployment_for(fake_mistral, alias="group")
    deployment_for(other_fake, alias="backup")
    fake_mistral.fail(400)

    r = chat(client, auth)

    assert r.status_code == 400
    assert len(fake_mistral.requests) == 1
    assert other_fake.requests == []  # no fallback either: another model would refuse it the same way
    assert UsageRecord.objects.get().attempts == 1


# --- fallbacks --------------------------------------------------------------------------------------


def test_a_failing_group_falls_back_to_the_configured_group(client, auth, fake_mistral, other_fake, deployment_for):
    configure(fallbacks=[{"group": ["backup"]}])
    deployment_for(fake_mistral, alias="group")
    backup = deployment_for(other_fake, alias="backup")
    fake_mistral.fail(503)

    r = chat(client, auth)

    assert r.status_code == 200
    assert (r["x-tollgate-fallback"], r["x-tollgate-deployment"]) == ("backup", str(backup.pk))
    assert other_fake.last_request.json["model"] == "mistral-small-latest"
    row = UsageRecord.objects.get()
    assert (row.model, row.model_group, row.attempts, row.deployment_id) == ("group", "backup", 2, backup.pk)


def test_a_prompt_too_long_goes_to_the_context_window_fallback(client, auth, fake_mistral, other_fake, deployment_for):
    configure(fallbacks=[{"group": ["general"]}], context_window_fallbacks=[{"group": ["long"]}], num_retries=2)
    deployment_for(fake_mistral, alias="group")
    deployment_for(fake_mistral, alias="general")
    long = deployment_for(other_fake, alias="long")
    fake_mistral.fail(400, CONTEXT_TOO_LONG)

    r = chat(client, auth)

    assert r.status_code == 200
    assert (r["x-tollgate-fallback"], r["x-tollgate-deployment"]) == ("long", str(long.pk))
    assert len(fake_mistral.requests) == 1  # not retried: the same prompt is as long the second time


def test_a_content_refusal_goes_to_the_content_policy_fallback(client, auth, fake_mistral, other_fake, deployment_for):
    configure(content_policy_fallbacks=[{"group": ["lenient"]}])
    deployment_for(fake_mistral, alias="group")
    deployment_for(other_fake, alias="lenient")
    fake_mistral.fail(400, CONTENT_REFUSED)

    r = chat(client, auth)

    assert r.status_code == 200
    assert r["x-tollgate-fallback"] == "lenient"


def test_a_context_window_error_without_its_fallback_is_the_callers_400(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="group")
    fake_mistral.fail(400, CONTEXT_TOO_LONG)

    r = chat(client, auth)

    assert r.status_code == 400
    assert "maximum context length" in r.json()["error"]["message"]


def test_a_requests_own_fallbacks_are_tried_and_not_sent_upstream(
    client, auth, fake_mistral, other_fake, deployment_for
):
    deployment_for(fake_mistral, alias="group")
    deployment_for(other_fake, alias="backup")
    fake_mistral.fail(502)

    r = chat(client, auth, fallbacks=["unknown-model", "backup"])

    assert r.status_code == 200
    assert r["x-tollgate-fallback"] == "backup"
    for request in fake_mistral.requests + other_fake.requests:
        assert "fallbacks" not in request.json


def test_fallbacks_are_tried_in_order_until_one_answers(client, auth, fake_mistral, other_fake, deployment_for):
    configure(fallbacks=[{"group": ["second", "third"]}])
    deployment_for(fake_mistral, alias="group")
    deployment_for(fake_mistral, alias="second")
    third = deployment_for(other_fake, alias="third")
    fake_mistral.fail(503)
    fake_mistral.fail(503)

    r = chat(client, auth)

    assert (r.status_code, r["x-tollgate-deployment"]) == (200, str(third.pk))
    assert UsageRecord.objects.get().attempts == 3


# --- cooldowns --------------------------------------------------------------------------------------


def test_a_failing_deployment_cools_down_and_comes_back_after_cooldown_time(
    client, auth, fake_mistral, other_fake, deployment_for
):
    configure(allowed_fails=1, cooldown_time=1)
    failing = deployment_for(fake_mistral, alias="group", order=1)
    healthy = deployment_for(other_fake, alias="group", order=2)
    fake_mistral.fail(503)
    fake_mistral.fail(503)

    assert [chat(client, auth).status_code for _ in range(2)] == [503, 503]  # the second fail passes allowed_fails
    cooled = [chat(client, auth)["x-tollgate-deployment"] for _ in range(3)]
    time.sleep(1.1)
    back = chat(client, auth)

    assert cooled == [str(healthy.pk)] * 3
    assert back["x-tollgate-deployment"] == str(failing.pk)
    assert len(fake_mistral.requests) == 3


def test_failures_within_allowed_fails_do_not_cool_a_deployment(client, auth, fake_mistral, other_fake, deployment_for):
    configure(allowed_fails=3, cooldown_time=60)
    failing = deployment_for(fake_mistral, alias="group", order=1)
    deployment_for(other_fake, alias="group", order=2)
    for _ in range(3):
        fake_mistral.fail(503)

    statuses = [chat(client, auth).status_code for _ in range(3)]

    assert statuses == [503] * 3
    assert chat(client, auth)["x-tollgate-deployment"] == str(failing.pk)


def test_a_groups_only_deployment_is_never_cooled_down(client, auth, fake_mistral, deployment_for):
    configure(allowed_fails=0, cooldown_time=60)
    deployment_for(fake_mistral, alias="group")
    for _ in range(3):
        fake_mistral.fail(503)

    statuses = [chat(client, auth).status_code for _ in range(4)]

    assert statuses == [503, 503, 503, 200]


def test_all_deployments_cooling_down_is_429_with_retry_after(client, auth, fake_mistral, other_fake, deployment_for):
    configure(allowed_fails=0, cooldown_time=20)
    deployment_for(fake_mistral, alias="group")
    deployment_for(other_fake, alias="group")
    fake_mistral.fail(503)
    other_fake.fail(503)
    chat(client, auth)
    chat(client, auth)  # whichever was picked first is cooling: this one goes to the other

    r = chat(client, auth)

    assert r.status_code == 429
    assert r.json()["error"]["code"] == "no_deployment_available"
    assert 1 <= int(r["Retry-After"]) <= 20
    assert "cooling down" in r.json()["error"]["message"]


# --- streams ----------------------------------------------------------------------------------------


def test_a_stream_cut_after_its_first_chunk_is_not_retried(client, auth, fake_mistral, deployment_for):
    configure(num_retries=2)
    deployment_for(fake_mistral, alias="group")
    fake_mistral.cut_stream(1)

    r = chat(client, auth, stream=True)

    events = sse(r)
    assert r.status_code == 200
    assert json.loads(events[1])["choices"][0]["delta"]["content"]  # the chunk that got through
    assert json.loads(events[-1])["error"]["code"] == "upstream_stream_broken"
    assert "[DONE]" not in events
    assert len(fake_mistral.requests) == 1
    assert UsageRecord.objects.get().attempts == 1


def test_a_stream_failing_before_its_first_chunk_is_retried(client, auth, fake_mistral, deployment_for):
    configure(num_retries=1)
    deployment_for(fake_mistral, alias="group")
    fake_mistral.fail(503)
    fake_mistral.reply_stream(["Hel", "lo"])

    r = chat(client, auth, stream=True)

    events = sse(r)
    assert r["x-tollgate-attempts"] == "2"
    assert "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1]) == "Hello"
    assert events[-1] == "[DONE]"
    assert len(fake_mistral.requests) == 2


def test_a_stream_falls_back_before_its_first_byte(client, auth, fake_mistral, other_fake, deployment_for):
    configure(fallbacks=[{"group": ["backup"]}])
    deployment_for(fake_mistral, alias="group")
    deployment_for(other_fake, alias="backup")
    fake_mistral.fail(500)

    r = chat(client, auth, stream=True)

    assert r["x-tollgate-fallback"] == "backup"
    assert sse(r)[-1] == "[DONE]"


# --- timeouts ---------------------------------------------------------------------------------------


def test_a_deployment_timeout_answers_504(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="group", timeout=0.3)
    fake_mistral.hang(1.0)

    started = time.monotonic()
    r = chat(client, auth)

    assert r.status_code == 504
    assert r.json()["error"]["code"] == "upstream_timeout"
    assert time.monotonic() - started < 0.9


def test_a_timed_out_attempt_is_retried(client, auth, fake_mistral, deployment_for):
    configure(num_retries=1)
    deployment_for(fake_mistral, alias="group", timeout=0.3)
    fake_mistral.hang(1.0)

    r = chat(client, auth)

    assert r.status_code == 200
    assert r["x-tollgate-attempts"] == "2"


def test_the_global_timeout_fills_in_for_deployments_without_one(client, auth, fake_mistral, deployment_for):
    configure(timeout=0.3)
    deployment_for(fake_mistral, alias="group")
    deployment_for(fake_mistral, alias="patient", timeout=5)
    fake_mistral.hang(1.0)

    started = time.monotonic()
    r = chat(client, auth)

    assert r.status_code == 504
    assert time.monotonic() - started < 0.9
    fake_mistral.hang(0.5)
    assert chat(client, auth, model="patient").status_code == 200  # its own timeout wins


def test_a_stream_that_stalls_before_its_first_chunk_times_out(client, auth, fake_mistral, deployment_for):
    configure(stream_timeout=0.3)
    deployment_for(fake_mistral, alias="group")
    fake_mistral.hang(1.0)

    r = chat(client, auth, stream=True)

    assert r.status_code == 504


def test_a_stream_that_stalls_after_its_first_chunk_ends_with_an_error_event(
    client, auth, fake_mistral, deployment_for
):
    configure(stream_timeout=0.3, num_retries=2)
    deployment_for(fake_mistral, alias="group")
    fake_mistral.reply_stream(["Hel", "lo"], delay=1.0)  # the role chunk at once, then a 1 s gap

    r = chat(client, auth, stream=True)

    events = sse(r)
    assert r.status_code == 200
    assert json.loads(events[-1])["error"]["code"] == "upstream_timeout"
    assert len(fake_mistral.requests) == 1  # a chunk was relayed: no retry
    row = UsageRecord.objects.get()
    assert (row.status, row.attempts) == (504, 1)
