"""Which deployment of a group takes a call: strategies, order tiers, and deployment rpm/tpm.

Through the view with the Django test client, against fake Mistral servers on 127.0.0.1; the
`x-tollgate-deployment` header names the deployment that answered.
"""

import json
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass

import pytest

from proxy import deployment_state, strategies
from proxy.models import Deployment, LoadedConfig
from tests.conftest import HI
from tests.fakes.mistral import FakeMistral

CHAT = "/v1/chat/completions"


def post(client, auth, body):
    return client.post(CHAT, data=json.dumps(body), content_type="application/json", **auth)


def chat(client, auth, model="group", **fields):
    return post(client, auth, {"model": model, "messages": HI, **fields})


def configure(**router_settings) -> None:
    """What a config file's router_settings would say (the router reads the latest loaded config)."""
    LoadedConfig.objects.create(path="tests.yaml", sha256="0" * 64, router_settings=router_settings)


def deployment_of(response) -> int:
    assert response.status_code == 200, response.content
    return int(response["x-tollgate-deployment"])


@dataclass(frozen=True)
class Candidate:
    deployment: Deployment


@pytest.fixture
def other_fake():
    """A second Mistral server, so each deployment of a group can be scripted on its own."""
    with FakeMistral.running() as server:
        yield server


# --- simple-shuffle --------------------------------------------------------------------------------


def test_simple_shuffle_splits_traffic_by_weight(client, auth, fake_mistral, deployment_for):
    light = deployment_for(fake_mistral, alias="group", weight=1)
    heavy = deployment_for(fake_mistral, alias="group", weight=3)
    calls = 300

    picked = Counter(deployment_of(chat(client, auth)) for _ in range(calls))

    # 4.5 standard deviations of a binomial share: a false failure about once in 150,000 runs.
    tolerance = 4.5 * math.sqrt(0.25 * 0.75 / calls)
    assert picked[light.pk] + picked[heavy.pk] == calls
    assert abs(picked[light.pk] / calls - 0.25) < tolerance, (picked, tolerance)


def test_simple_shuffle_weighs_by_rpm_when_no_weight_is_set():
    small, large = Candidate(Deployment(pk=1, rpm=1000)), Candidate(Deployment(pk=2, rpm=9000))
    draws = 20_000

    picked = Counter(strategies.choose("simple-shuffle", [small, large]).deployment.pk for _ in range(draws))

    tolerance = 4.5 * math.sqrt(0.1 * 0.9 / draws)
    assert abs(picked[1] / draws - 0.1) < tolerance, picked


# --- order tiers ------------------------------------------------------------------------------------


def test_the_second_tier_serves_only_while_the_first_is_unavailable(client, auth, fake_mistral, deployment_for):
    first = deployment_for(fake_mistral, alias="group", order=1, rpm=3)
    second = deployment_for(fake_mistral, alias="group", order=2)

    picked = [deployment_of(chat(client, auth)) for _ in range(5)]

    assert picked == [first.pk] * 3 + [second.pk] * 2  # the first tier is full after 3 this minute


def test_a_tier_of_several_deployments_is_used_before_the_next(client, auth, fake_mistral, deployment_for):
    a = deployment_for(fake_mistral, alias="group", order=1)
    b = deployment_for(fake_mistral, alias="group", order=1)
    deployment_for(fake_mistral, alias="group", order=2)

    picked = {deployment_of(chat(client, auth)) for _ in range(30)}

    assert picked == {a.pk, b.pk}


# --- least-busy, latency-based, usage-based ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_least_busy_sends_calls_to_the_deployment_with_none_in_flight(auth, fake_mistral, deployment_for):
    from django.db import connections
    from django.test import Client

    configure(routing_strategy="least-busy")
    a = deployment_for(fake_mistral, alias="group")
    b = deployment_for(fake_mistral, alias="group")
    fake_mistral.hang(1.0)  # the first call to reach the fake stays in flight for a second
    slow: list = []

    def in_flight_call() -> None:
        try:
            slow.append(chat(Client(), auth))
        finally:
            connections.close_all()  # this thread's connection, so the test database can be dropped

    thread = threading.Thread(target=in_flight_call)
    thread.start()
    deadline = time.monotonic() + 5
    while deployment_state.in_flight(a.pk) + deployment_state.in_flight(b.pk) == 0:
        assert time.monotonic() < deadline, "the first call never started"
        time.sleep(0.01)
    busy = a.pk if deployment_state.in_flight(a.pk) else b.pk

    picked = {deployment_of(chat(Client(), auth)) for _ in range(10)}

    thread.join(10)
    assert picked == {({a.pk, b.pk} - {busy}).pop()}
    assert deployment_of(slow[0]) == busy


def test_latency_based_prefers_the_faster_deployment_once_each_is_measured(
    client, auth, fake_mistral, other_fake, deployment_for
):
    configure(routing_strategy="latency-based-routing")
    fast = deployment_for(fake_mistral, alias="group")
    slow = deployment_for(other_fake, alias="group")
    other_fake.hang(0.3)  # its first answer takes 0.3 s

    first_two = {deployment_of(chat(client, auth)) for _ in range(2)}  # each unmeasured one is tried first
    then = {deployment_of(chat(client, auth)) for _ in range(10)}

    assert first_two == {fast.pk, slow.pk}
    assert then == {fast.pk}


def test_usage_based_sends_calls_to_the_deployment_with_fewer_tokens_this_minute(
    client, auth, fake_mistral, deployment_for
):
    configure(routing_strategy="usage-based-routing")
    a = deployment_for(fake_mistral, alias="group")
    b = deployment_for(fake_mistral, alias="group")
    fake_mistral.reply("Big", prompt_tokens=500, completion_tokens=500)  # the first call, whichever takes it

    first = deployment_of(chat(client, auth))
    then = [deployment_of(chat(client, auth)) for _ in range(5)]  # default answers: a few tokens each

    assert then == [({a.pk, b.pk} - {first}).pop()] * 5
    assert deployment_state.minute_use(first) == (0, 1000)  # counted without an rpm/tpm of its own


# --- deployment rpm / tpm ---------------------------------------------------------------------------


def test_a_deployment_at_its_rpm_is_skipped_while_another_has_room(client, auth, fake_mistral, deployment_for):
    limited = deployment_for(fake_mistral, alias="group", rpm=2, weight=1000)  # preferred while it has room
    other = deployment_for(fake_mistral, alias="group", weight=1)

    picked = [deployment_of(chat(client, auth)) for _ in range(6)]

    assert picked.count(limited.pk) == 2
    assert picked[-3:] == [other.pk] * 3


def test_a_deployment_at_its_tpm_is_skipped_while_another_has_room(client, auth, fake_mistral, deployment_for):
    limited = deployment_for(fake_mistral, alias="group", order=1, tpm=100)
    other = deployment_for(fake_mistral, alias="group", order=2)
    fake_mistral.reply("Long", prompt_tokens=60, completion_tokens=60)

    picked = [deployment_of(chat(client, auth)) for _ in range(3)]

    assert picked == [limited.pk, other.pk, other.pk]
    assert deployment_state.minute_use(limited.pk)[1] == 120  # requests are counted only under an rpm


def test_all_deployments_full_is_429_no_deployment_available_with_retry_after(
    client, auth, fake_mistral, deployment_for
):
    if 60 - time.time() % 60 < 2:  # the rpm window is the calendar minute: don't straddle its end
        time.sleep(60 - time.time() % 60 + 0.1)
    deployment_for(fake_mistral, alias="group", rpm=1)
    deployment_for(fake_mistral, alias="group", rpm=1)
    assert [chat(client, auth).status_code for _ in range(2)] == [200, 200]

    r = chat(client, auth)

    assert r.status_code == 429
    error = r.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "no_deployment_available")
    assert 1 <= int(r["Retry-After"]) <= 61
    assert len(fake_mistral.requests) == 2  # refused before any upstream call
