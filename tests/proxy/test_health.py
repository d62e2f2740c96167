"""GET /health: a real minimal call per deployment, in parallel, bounded; and background checks feeding the router."""

import json
import time

import pytest
from django.core.cache import cache

from config.celery import app
from proxy import deployment_state, health
from proxy.models import LoadedConfig
from tenants import keys
from tenants.models import InternalUser
from tests.conftest import HI
from tests.fakes.mistral import FakeMistral


@pytest.fixture
def other_fake():
    with FakeMistral.running() as server:
        yield server


@pytest.fixture(autouse=True)
def no_cached_round():
    cache.clear()  # the background check's "last run" and "last report" live in the cache
    yield
    cache.clear()


def get_health(client, auth, **query):
    return client.get("/health", query, **auth)


def test_health_reports_each_deployment_by_a_real_call(client, auth, fake_mistral, other_fake, deployment_for):
    good = deployment_for(fake_mistral, alias="small")
    bad = deployment_for(other_fake, alias="small", api_key="sk-provider-secret-0123456789")  # refused: 401
    embed = deployment_for(fake_mistral, alias="embedder", model="mistral/mistral-embed")
    mock = deployment_for(None, alias="mock", mock_response="hi")

    r = get_health(client, auth)

    assert r.status_code == 200
    report = r.json()
    assert (report["healthy_count"], report["unhealthy_count"]) == (3, 1)
    assert {e["deployment_id"] for e in report["healthy_endpoints"]} == {good.pk, embed.pk, mock.pk}
    [unhealthy] = report["unhealthy_endpoints"]
    assert unhealthy["deployment_id"] == bad.pk
    assert unhealthy["model"] == "mistral/mistral-small-latest"
    assert unhealthy["api_base"] == other_fake.url
    assert unhealthy["error"] == "UpstreamError: Unauthorized"
    assert "sk-provider-secret" not in r.content.decode()
    assert FakeMistral.API_KEY not in r.content.decode()
    pings = {req.path: req.json for req in fake_mistral.requests}
    assert pings["/v1/chat/completions"]["messages"] == [{"role": "user", "content": "ping"}]
    assert pings["/v1/chat/completions"]["max_tokens"] == 1
    assert pings["/v1/embeddings"]["input"] == "ping"


def test_health_mode_comes_from_model_info(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="vectors", model="mistral/mistral-embed", model_info={"mode": "embedding"})

    assert get_health(client, auth).json()["healthy_count"] == 1
    assert fake_mistral.last_request.path == "/v1/embeddings"


def test_health_of_one_model(client, auth, fake_mistral, other_fake, deployment_for):
    wanted = deployment_for(fake_mistral, alias="small")
    deployment_for(other_fake, alias="large")

    report = get_health(client, auth, model="small").json()

    assert [e["deployment_id"] for e in report["healthy_endpoints"]] == [wanted.pk]
    assert other_fake.requests == []
    assert get_health(client, auth, model="nope").status_code == 404


def test_health_probes_in_parallel_and_gives_up_at_the_timeout(
    client, auth, settings, fake_mistral, other_fake, deployment_for
):
    settings.TOLLGATE_HEALTH_TIMEOUT = 0.5
    deployment_for(fake_mistral, alias="a")
    deployment_for(other_fake, alias="b")
    fake_mistral.hang(2)
    other_fake.hang(2)

    started = time.monotonic()
    report = get_health(client, auth).json()
    took = time.monotonic() - started

    assert report["unhealthy_count"] == 2
    assert all("0.5s" in e["error"] for e in report["unhealthy_endpoints"]), report
    assert took < 1.5, took  # not 0.5 s twice, one after the other, and not the 2 s hang


def test_health_needs_the_master_key_or_a_proxy_admin(client, db, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="small")
    member = InternalUser.objects.create(user_id="member")
    admin = InternalUser.objects.create(user_id="admin", user_role=InternalUser.Role.PROXY_ADMIN)
    _, member_key = keys.create(user=member)
    _, admin_key = keys.create(user=admin)

    refused = client.get("/health", HTTP_AUTHORIZATION=f"Bearer {member_key}")
    allowed = client.get("/health", HTTP_AUTHORIZATION=f"Bearer {admin_key}")

    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"
    assert allowed.status_code == 200
    assert client.get("/health").status_code == 401
    assert len(fake_mistral.requests) == 1  # only the admin's check called out


# --- background checks ------------------------------------------------------------------------------


def configure(**general_settings) -> None:
    LoadedConfig.objects.create(path="tests.yaml", sha256="0" * 64, general_settings=general_settings)


def chat(client, auth):
    body = json.dumps({"model": "group", "messages": HI})
    return client.post("/v1/chat/completions", data=body, content_type="application/json", **auth)


def test_background_checks_are_scheduled_on_celery_beat():
    entry = app.conf.beat_schedule["background-health-checks"]
    assert entry["task"] == "proxy.tasks.background_health_checks"


def test_background_checks_do_nothing_unless_the_config_asks(fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="group")

    assert health.run_in_background() is None
    assert fake_mistral.requests == []


def test_an_unhealthy_deployment_is_left_out_until_a_check_finds_it_healthy(
    client, auth, fake_mistral, other_fake, deployment_for
):
    configure(background_health_checks=True, health_check_interval=60)
    sick = deployment_for(fake_mistral, alias="group", order=1)
    well = deployment_for(other_fake, alias="group", order=2)
    fake_mistral.fail(503)

    assert health.run_in_background() == 1
    assert health.run_in_background() is None  # the next round is due in 60 s, not now

    assert chat(client, auth)["x-tollgate-deployment"] == str(well.pk)
    assert 55 < deployment_state.cooldown_left(sick.pk) <= 60
    assert health.last_report() == {sick.pk: False, well.pk: True}

    cache.clear()  # the interval has passed
    assert health.run_in_background() == 0
    assert chat(client, auth)["x-tollgate-deployment"] == str(sick.pk)


def test_a_groups_only_deployment_is_not_left_out_by_a_failed_check(client, auth, fake_mistral, deployment_for):
    configure(background_health_checks=True)
    only = deployment_for(fake_mistral, alias="group")
    fake_mistral.fail(503)

    assert health.run_in_background() == 1

    assert deployment_state.cooldown_left(only.pk) == 0
    assert chat(client, auth).status_code == 200
