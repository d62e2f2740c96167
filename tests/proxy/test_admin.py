"""Deployments in the Django admin: secrets are write-only, config rows say where they come from."""

import re
import textwrap

import pytest

from proxy import configfile, crypto, deployments
from proxy.models import Deployment, LoadedConfig

pytestmark = pytest.mark.django_db

SECRET = "sk-recognisable-secret-4242-abcd"
CHANGELIST = "/admin/proxy/deployment/"
ADD = "/admin/proxy/deployment/add/"


def change_url(deployment: Deployment) -> str:
    return f"/admin/proxy/deployment/{deployment.pk}/change/"


def form_data(**fields: str) -> dict[str, str]:
    """What the admin form posts for a deployment: every field, empty unless given."""
    data = {
        name: ""
        for name in (
            "model_name",
            "litellm_model",
            "api_base",
            "api_version",
            "api_key",
            "mock_response",
            "rpm",
            "tpm",
            "weight",
            "order",
            "timeout",
            "stream_timeout",
            "max_retries",
            "input_cost_per_token",
            "output_cost_per_token",
        )
    }
    data.update(enabled="on", params="{}", model_info="{}")
    data.update(fields)
    return data


def load(tmp_path, text: str) -> configfile.ConfigFile:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    config = configfile.read(path)
    deployments.load(config)
    return config


def model_ids(client, auth) -> list[str]:
    r = client.get("/v1/models", **auth)
    assert r.status_code == 200, r.content
    return [card["id"] for card in r.json()["data"]]


@pytest.fixture
def with_secret(deployment_for) -> Deployment:
    return deployment_for(
        None, alias="secretive", api_key=SECRET, credentials={"aws_secret_access_key": "aws-secret-recognisable-99"}
    )


@pytest.fixture
def with_reference(deployment_for) -> Deployment:
    return deployment_for(None, alias="referenced", api_key="os.environ/TG_ADMIN_TEST_KEY")


def test_list_never_shows_a_stored_key(admin_client, with_secret, with_reference):
    html = admin_client.get(CHANGELIST).content.decode()

    assert "secretive" in html and "referenced" in html
    assert SECRET not in html
    assert "set (encrypted)" in html
    assert "os.environ/TG_ADMIN_TEST_KEY" in html


def test_change_page_never_shows_a_stored_secret(admin_client, with_secret):
    r = admin_client.get(change_url(with_secret))

    html = r.content.decode()
    assert r.status_code == 200
    assert SECRET not in html
    assert "aws-secret-recognisable-99" not in html
    assert "fernet:" not in html
    assert "Current: set (encrypted)" in html


def test_change_page_shows_an_environment_reference(admin_client, with_reference):
    html = admin_client.get(change_url(with_reference)).content.decode()

    assert "Current: os.environ/TG_ADMIN_TEST_KEY" in html


def test_adding_through_the_admin_stores_the_key_encrypted(admin_client):
    r = admin_client.post(
        ADD,
        form_data(
            model_name="added",
            litellm_model="mistral/mistral-small-latest",
            api_key=SECRET,
            aws_secret_access_key="aws-typed-secret",
            rpm="5",
        ),
    )

    assert r.status_code == 302, r.content.decode()
    deployment = Deployment.objects.get(model_name="added")
    assert (deployment.source, deployment.rpm, deployment.enabled) == (Deployment.Source.ADMIN, 5, True)
    assert deployment.api_key.startswith("fernet:")
    assert crypto.resolve(deployment.api_key) == SECRET
    assert crypto.resolve(deployment.credentials["aws_secret_access_key"]) == "aws-typed-secret"


def test_adding_a_model_without_provider_is_refused(admin_client):
    r = admin_client.post(ADD, form_data(model_name="added", litellm_model="mistral-small-latest"))

    assert r.status_code == 200
    assert "Write provider/model-id" in r.content.decode()
    assert not Deployment.objects.exists()


def test_editing_with_an_empty_key_field_keeps_the_stored_key(admin_client, with_secret):
    r = admin_client.post(
        change_url(with_secret), form_data(model_name="secretive", litellm_model="mistral/other", api_key="")
    )

    assert r.status_code == 302, r.content.decode()
    with_secret.refresh_from_db()
    assert with_secret.litellm_model == "mistral/other"
    assert crypto.resolve(with_secret.api_key) == SECRET
    assert crypto.resolve(with_secret.credentials["aws_secret_access_key"]) == "aws-secret-recognisable-99"


def test_typing_a_new_key_replaces_the_stored_one(admin_client, with_secret):
    admin_client.post(
        change_url(with_secret),
        form_data(
            model_name="secretive", litellm_model="mistral/mistral-small-latest", api_key="os.environ/TG_ADMIN_TEST_KEY"
        ),
    )

    with_secret.refresh_from_db()
    assert with_secret.api_key == "os.environ/TG_ADMIN_TEST_KEY"


def test_remove_the_stored_api_key_clears_it(admin_client, with_secret):
    r = admin_client.post(
        change_url(with_secret),
        form_data(model_name="secretive", litellm_model="mistral/mistral-small-latest", clear_api_key="on"),
    )

    assert r.status_code == 302, r.content.decode()
    with_secret.refresh_from_db()
    assert with_secret.api_key == ""


def test_config_rows_show_their_source_and_file(admin_client, tmp_path):
    config = load(
        tmp_path,
        """\
        model_list:
          - model_name: from-file
            litellm_params:
              model: mistral/mistral-small-latest
    """,
    )
    deployment = Deployment.objects.get()

    html = admin_client.get(change_url(deployment)).content.decode()

    assert '<div class="readonly">config file</div>' in html
    assert f'<div class="readonly">{config.path}</div>' in html
    assert '<td class="field-source">config file</td>' in admin_client.get(CHANGELIST).content.decode()


def test_disable_action_removes_the_model_from_the_models_list(admin_client, client, auth, tmp_path):
    load(
        tmp_path,
        """\
        model_list:
          - model_name: kept
            litellm_params: {model: mistral/mistral-small-latest}
          - model_name: switched-off
            litellm_params: {model: mistral/open-mistral-nemo}
    """,
    )
    target = Deployment.objects.get(model_name="switched-off")
    assert model_ids(client, auth) == ["kept", "switched-off"]

    r = admin_client.post(CHANGELIST, {"action": "disable", "_selected_action": [target.pk]})

    assert r.status_code == 302
    target.refresh_from_db()
    assert target.enabled is False
    assert model_ids(client, auth) == ["kept"]
    assert client.get("/v1/models/switched-off", **auth).status_code == 404


def test_enable_action_brings_the_model_back(admin_client, client, auth, deployment_for):
    deployment = deployment_for(None, alias="dormant", enabled=False)
    assert "dormant" not in model_ids(client, auth)

    admin_client.post(CHANGELIST, {"action": "enable", "_selected_action": [deployment.pk]})

    assert "dormant" in model_ids(client, auth)


def test_loaded_config_page_hides_the_master_key_and_environment_values(admin_client, tmp_path):
    master = "sk-admin-page-master-key-0123456789ab"
    load(
        tmp_path,
        f"""\
        model_list: []
        general_settings:
          master_key: {master}
          alerting: [slack]
        environment_variables:
          TG_VISIBLE_NAME: hidden-environment-value-31337
    """,
    )
    config = LoadedConfig.objects.get()

    listing = admin_client.get("/admin/proxy/loadedconfig/")
    page = admin_client.get(f"/admin/proxy/loadedconfig/{config.pk}/change/")

    assert (listing.status_code, page.status_code) == (200, 200)
    for html in (listing.content.decode(), page.content.decode()):
        assert master not in html
        assert "hidden-environment-value-31337" not in html
    assert "TG_VISIBLE_NAME" in page.content.decode()
    assert "alerting" in page.content.decode()


def test_master_key_page_shows_only_the_hint(admin_client, tmp_path):
    master = "sk-admin-page-master-key-0123456789ab"
    load(tmp_path, f"general_settings:\n  master_key: {master}\n")

    html = admin_client.get("/admin/tenants/masterkey/").content.decode()

    assert "sk-...89ab" in html
    assert master not in html


# --- router state, provider fieldsets, test connection, audit -------------------------------------


def test_list_shows_provider_group_and_router_state(admin_client, deployment_for):
    from proxy import deployment_state

    calm = deployment_for(None, alias="calm", weight=2, order=1, rpm=60)
    hot = deployment_for(None, alias="hot")
    deployment_state.failed(hot.pk, allowed_fails=0, cooldown_time=30)
    deployment_state.count_use(calm.pk, requests=3)

    html = admin_client.get(CHANGELIST).content.decode()

    assert '<td class="field-state">healthy</td>' in html
    assert re.search(r'<td class="field-state">cooling down \((29|30)s\)</td>', html)
    assert '<td class="field-rpm_shown">3 / 60</td>' in html
    assert '<td class="field-provider_shown">mistral</td>' in html


def test_change_page_shows_only_its_providers_fields(admin_client, deployment_for):
    bedrock = deployment_for(
        None, alias="b", model="bedrock/anthropic.claude-3-haiku", params={"aws_region_name": "eu"}
    )
    mistral = deployment_for(None, alias="m")

    bedrock_html = admin_client.get(change_url(bedrock)).content.decode()
    mistral_html = admin_client.get(change_url(mistral)).content.decode()

    assert 'name="aws_region_name"' in bedrock_html and 'value="eu"' in bedrock_html
    assert 'name="vertex_project"' not in bedrock_html
    assert 'name="aws_region_name"' not in mistral_html and 'name="api_key"' in mistral_html
    assert 'name="vertex_project"' in admin_client.get(ADD).content.decode()


def test_bedrock_settings_go_to_params_and_secrets_are_sealed(admin_client, deployment_for):
    bedrock = deployment_for(None, alias="b", model="bedrock/anthropic.claude-3-haiku")

    r = admin_client.post(
        change_url(bedrock),
        form_data(
            model_name="b",
            litellm_model="bedrock/anthropic.claude-3-haiku",
            aws_region_name="eu-west-3",
            aws_role_name="arn:aws:iam::1:role/r",
            aws_secret_access_key="aws-typed-secret-55",
        ),
    )

    assert r.status_code == 302, r.content.decode()
    bedrock.refresh_from_db()
    assert bedrock.params == {"aws_region_name": "eu-west-3", "aws_role_name": "arn:aws:iam::1:role/r"}
    assert crypto.resolve(bedrock.credentials["aws_secret_access_key"]) == "aws-typed-secret-55"
    from tenants.models import AuditEntry

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.via, entry.object_type) == ("update", "admin", "deployment")
    assert entry.after["credentials"] == "***" and entry.after["params"]["aws_region_name"] == "eu-west-3"
    assert "aws-typed-secret-55" not in str(entry.before) + str(entry.after)


def test_test_connection_action_reports_latency(admin_client, fake_mistral, deployment_for):
    deployment = deployment_for(fake_mistral, alias="live")

    r = admin_client.post(CHANGELIST, {"action": "test_connection", "_selected_action": [deployment.pk]}, follow=True)

    [message] = [str(m) for m in r.context["messages"]]
    assert re.fullmatch(r"live \(mistral/mistral-small-latest\): answered in \d+ ms", message)
    [request] = fake_mistral.requests
    assert request.json["max_tokens"] == 1


def test_test_connection_button_reports_the_error_without_the_key(admin_client, fake_mistral, deployment_for):
    deployment = deployment_for(fake_mistral, alias="locked", api_key=SECRET)  # the fake wants another key

    r = admin_client.post(f"{change_url(deployment)[:-7]}test-connection/", follow=True)

    [message] = [str(m) for m in r.context["messages"]]
    assert message.startswith("locked (mistral/mistral-small-latest): failed after")
    assert SECRET not in r.content.decode()
    assert r.redirect_chain[-1][0] == change_url(deployment)


def test_test_connection_embeds_one_word_for_an_embedding_model(admin_client, fake_mistral, deployment_for):
    deployment = deployment_for(fake_mistral, alias="vectors", model="mistral/mistral-embed")

    r = admin_client.post(CHANGELIST, {"action": "test_connection", "_selected_action": [deployment.pk]}, follow=True)

    [message] = [str(m) for m in r.context["messages"]]
    assert "answered in" in message
    assert fake_mistral.requests[0].json["input"] == "ping"


def test_test_connection_needs_a_post(admin_client, deployment_for):
    deployment = deployment_for(None, alias="x")

    assert admin_client.get(f"/admin/proxy/deployment/{deployment.pk}/test-connection/").status_code == 405


def test_enable_disable_and_delete_are_audited(admin_client, deployment_for):
    from tenants.models import AuditEntry

    deployment = deployment_for(None, alias="audited", api_key=SECRET)

    admin_client.post(CHANGELIST, {"action": "disable", "_selected_action": [deployment.pk]})
    admin_client.post(f"/admin/proxy/deployment/{deployment.pk}/delete/", {"post": "yes"})

    disabled, deleted = AuditEntry.objects.order_by("id")
    assert (disabled.before, disabled.after) == ({"enabled": True}, {"enabled": False})
    assert deleted.action == "delete" and deleted.before["api_key"] == "***"


def test_list_shows_a_failed_background_health_check(admin_client, deployment_for):
    health = pytest.importorskip("proxy.health")
    from django.core.cache import cache

    sick = deployment_for(None, alias="sick")
    cache.set(health.LAST_REPORT_KEY, {sick.pk: False})
    try:
        html = admin_client.get(CHANGELIST).content.decode()
    finally:
        cache.delete(health.LAST_REPORT_KEY)

    assert '<td class="field-state">unhealthy (last health check)</td>' in html
