"""Loading a config file into the database: in place, keeping admin decisions, secrets sealed."""

import hashlib
import textwrap
from pathlib import Path

import pytest
from django.db import connection

from proxy import configfile, crypto, deployments
from proxy.models import Deployment, LoadedConfig
from tenants.models import MasterKey
from tests.conftest import HI

pytestmark = pytest.mark.django_db

TWO_MODELS = """\
model_list:
  - model_name: small
    litellm_params:
      model: mistral/mistral-small-latest
      api_key: os.environ/TG_TEST_MISTRAL_KEY
      rpm: 10
  - model_name: nemo
    litellm_params:
      model: mistral/open-mistral-nemo
      api_key: os.environ/TG_TEST_MISTRAL_KEY
"""
LITERAL_KEY = "sk-literal-provider-key-7f3a9c"
MASTER = "sk-config-master-key-0123456789abcdefXYZ"


def load(path: Path, text: str) -> dict[str, int]:
    path.write_text(textwrap.dedent(text))
    return deployments.load(configfile.read(path))


def raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def raw_row(table: str) -> str:
    """Every column of every row of `table`, as one string to search."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")
        return repr(cursor.fetchall())


def test_load_creates_deployments_marked_as_from_the_file(tmp_path):
    counts = load(tmp_path / "config.yaml", TWO_MODELS)

    rows = list(Deployment.objects.order_by("id"))
    assert counts == {"created": 2, "updated": 0, "removed": 0}
    assert [(d.model_name, d.litellm_model, d.rpm) for d in rows] == [
        ("small", "mistral/mistral-small-latest", 10),
        ("nemo", "mistral/open-mistral-nemo", None),
    ]
    assert {d.source for d in rows} == {Deployment.Source.CONFIG}
    assert {d.config_file for d in rows} == {str((tmp_path / "config.yaml").resolve())}
    assert all(d.enabled and d.config_id for d in rows)
    assert LoadedConfig.objects.get().path == str((tmp_path / "config.yaml").resolve())


def test_loading_again_updates_in_place(tmp_path):
    load(tmp_path / "config.yaml", TWO_MODELS)
    pks = list(Deployment.objects.order_by("id").values_list("pk", flat=True))

    counts = load(tmp_path / "config.yaml", TWO_MODELS.replace("rpm: 10", "rpm: 99"))

    assert counts == {"created": 0, "updated": 2, "removed": 0}
    assert list(Deployment.objects.order_by("id").values_list("pk", flat=True)) == pks
    assert Deployment.objects.get(model_name="small").rpm == 99
    assert LoadedConfig.objects.count() == 1


def test_loading_again_keeps_an_admins_disabling(tmp_path):
    load(tmp_path / "config.yaml", TWO_MODELS)
    Deployment.objects.filter(model_name="nemo").update(enabled=False)

    load(tmp_path / "config.yaml", TWO_MODELS.replace("rpm: 10", "rpm: 20"))

    assert dict(Deployment.objects.values_list("model_name", "enabled")) == {"small": True, "nemo": False}


def test_entry_that_left_the_file_is_deleted(tmp_path):
    load(tmp_path / "config.yaml", TWO_MODELS)
    small = Deployment.objects.get(model_name="small")

    counts = load(tmp_path / "config.yaml", TWO_MODELS.split("  - model_name: nemo")[0])

    assert counts == {"created": 0, "updated": 1, "removed": 1}
    assert list(Deployment.objects.values_list("pk", flat=True)) == [small.pk]


def test_admin_rows_and_other_files_rows_are_never_touched(tmp_path, deployment_for):
    mine = deployment_for(None, alias="small", model="mistral/mistral-large-latest", api_key=LITERAL_KEY, enabled=False)
    load(tmp_path / "other.yaml", TWO_MODELS)
    load(tmp_path / "config.yaml", TWO_MODELS)

    load(tmp_path / "config.yaml", "model_list: []\n")

    mine.refresh_from_db()
    assert (mine.source, mine.litellm_model, mine.enabled) == (
        Deployment.Source.ADMIN,
        "mistral/mistral-large-latest",
        False,
    )
    assert crypto.resolve(mine.api_key) == LITERAL_KEY
    others = Deployment.objects.filter(source=Deployment.Source.CONFIG)
    assert {d.config_file for d in others} == {str((tmp_path / "other.yaml").resolve())}
    assert others.count() == 2


def test_literal_api_key_is_stored_encrypted(tmp_path):
    load(
        tmp_path / "config.yaml",
        f"""\
        model_list:
          - model_name: small
            litellm_params:
              model: mistral/mistral-small-latest
              api_key: {LITERAL_KEY}
              aws_secret_access_key: aws-secret-value-123
    """,
    )
    deployment = Deployment.objects.get()

    stored = raw("proxy_deployment", "api_key", deployment.pk)
    assert stored.startswith("fernet:")
    assert LITERAL_KEY not in stored
    assert "aws-secret-value-123" not in raw("proxy_deployment", "credentials", deployment.pk)
    assert crypto.resolve(deployment.api_key) == LITERAL_KEY
    assert crypto.resolve(deployment.credentials["aws_secret_access_key"]) == "aws-secret-value-123"


def test_environment_reference_is_stored_as_written_and_read_at_use_time(tmp_path, monkeypatch):
    monkeypatch.setenv("TG_TEST_MISTRAL_KEY", "first-value")
    load(tmp_path / "config.yaml", TWO_MODELS)
    deployment = Deployment.objects.get(model_name="small")

    assert raw("proxy_deployment", "api_key", deployment.pk) == "os.environ/TG_TEST_MISTRAL_KEY"
    assert deployment.api_key_display() == "os.environ/TG_TEST_MISTRAL_KEY"
    assert crypto.resolve(deployment.api_key) == "first-value"
    monkeypatch.setenv("TG_TEST_MISTRAL_KEY", "rotated-value")
    assert crypto.resolve(deployment.api_key) == "rotated-value"


def test_unset_environment_variable_raises_secret_unavailable(tmp_path, monkeypatch):
    monkeypatch.delenv("TG_TEST_MISTRAL_KEY", raising=False)
    load(tmp_path / "config.yaml", TWO_MODELS)

    with pytest.raises(crypto.SecretUnavailable, match="environment variable TG_TEST_MISTRAL_KEY is not set"):
        crypto.resolve(Deployment.objects.get(model_name="small").api_key)


def test_environment_variables_from_the_file_are_sealed_and_win(tmp_path, monkeypatch, client, auth, fake_mistral):
    monkeypatch.setenv("TG_TEST_MISTRAL_KEY", "wrong-key-from-process")
    load(
        tmp_path / "config.yaml",
        f"""\
        model_list:
          - model_name: small
            litellm_params:
              model: mistral/mistral-small-latest
              api_key: os.environ/TG_TEST_MISTRAL_KEY
              api_base: {fake_mistral.url}
        environment_variables:
          TG_TEST_MISTRAL_KEY: {fake_mistral.API_KEY}
    """,
    )
    fake_mistral.reply("Bonjour!")

    r = client.post("/v1/chat/completions", {"model": "small", "messages": HI}, content_type="application/json", **auth)

    assert r.status_code == 200, r.content
    assert fake_mistral.last_request.headers["authorization"] == f"Bearer {fake_mistral.API_KEY}"
    assert fake_mistral.API_KEY not in raw("proxy_loadedconfig", "environment_variables", LoadedConfig.objects.get().pk)


def test_master_key_is_stored_as_digest_and_hint_only(tmp_path):
    load(tmp_path / "config.yaml", f"general_settings:\n  master_key: {MASTER}\n")

    key = MasterKey.objects.get()
    assert key.digest == hashlib.sha256(MASTER.encode()).hexdigest()
    assert key.hint == "sk-...fXYZ"
    assert key.reference == ""
    assert MASTER not in raw_row("tenants_masterkey")
    assert MASTER[3:-4] not in raw_row("tenants_masterkey")


def test_master_key_is_not_kept_recoverable_in_the_loaded_config(tmp_path):
    load(tmp_path / "config.yaml", f"general_settings:\n  master_key: {MASTER}\n")

    config = LoadedConfig.objects.get()
    assert MASTER not in raw_row("proxy_loadedconfig")
    assert config.master_key == ""
    assert "master_key" not in config.general_settings


def test_master_key_reference_is_resolved_and_kept_as_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("TG_TEST_MASTER_KEY", MASTER)
    load(tmp_path / "config.yaml", "general_settings:\n  master_key: os.environ/TG_TEST_MASTER_KEY\n")

    key = MasterKey.objects.get()
    assert key.digest == hashlib.sha256(MASTER.encode()).hexdigest()
    assert key.reference == "os.environ/TG_TEST_MASTER_KEY"
    assert LoadedConfig.objects.get().master_key == "os.environ/TG_TEST_MASTER_KEY"
    assert MASTER not in raw_row("tenants_masterkey") + raw_row("proxy_loadedconfig")


@pytest.mark.parametrize(
    "general_settings", ["master_key: os.environ/TG_TEST_UNSET_MASTER_KEY", "{}"], ids=["unset-reference", "removed"]
)
def test_previous_master_key_stops_working_when_the_file_no_longer_sets_one(
    tmp_path, monkeypatch, settings, client, general_settings
):
    settings.TOLLGATE_MASTER_KEY = ""
    monkeypatch.delenv("TG_TEST_UNSET_MASTER_KEY", raising=False)
    load(tmp_path / "config.yaml", f"general_settings:\n  master_key: {MASTER}\n")
    assert client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {MASTER}").status_code == 200

    load(tmp_path / "config.yaml", f"general_settings:\n  {general_settings}\n")

    assert not MasterKey.objects.exists()
    assert client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {MASTER}").status_code == 401


def test_rotated_master_key_replaces_the_old_one(tmp_path, settings, client):
    settings.TOLLGATE_MASTER_KEY = ""
    load(tmp_path / "config.yaml", f"general_settings:\n  master_key: {MASTER}\n")

    load(tmp_path / "config.yaml", f"general_settings:\n  master_key: {MASTER}-rotated\n")

    assert client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {MASTER}-rotated").status_code == 200
    assert client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {MASTER}").status_code == 401
