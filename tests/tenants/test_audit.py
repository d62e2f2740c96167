"""The audit log records every management-API change, who made it, and never a secret."""

import json

import pytest

from proxy.models import Deployment
from tenants import audit, keys
from tenants.models import AuditEntry, TeamMembership, VirtualKey
from tests.conftest import MASTER_KEY
from tests.tenants.conftest import bearer

pytestmark = pytest.mark.django_db

MASTER_ACTOR = f"master key ({keys.hint(MASTER_KEY)})"
PROVIDER_SECRET = "sk-provider-secret-recognisable-777"


def entries(**filters) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(**filters).order_by("id"))


def assert_no_secret(*secrets: str) -> None:
    """No entry anywhere holds any of `secrets` (keys, digests, provider keys)."""
    dumped = json.dumps([[e.actor, e.object_repr, e.object_id, e.before, e.after] for e in AuditEntry.objects.all()])
    for secret in secrets:
        assert secret not in dumped


def test_generated_key_is_recorded_by_hint_without_key_or_digest(api, auth, generate_key, team):
    answer = generate_key(team_id=team.team_id, key_alias="ci", max_budget=5)

    [entry] = entries(object_type="key")
    assert (entry.action, entry.actor, entry.via) == ("create", MASTER_ACTOR, "api")
    assert entry.object_repr == "ci"
    assert entry.after["team"] == "team-a" and entry.after["max_budget"] == "5"
    assert entry.after["token"] == "***"
    assert entry.request_id and entry.before is None
    assert_no_secret(answer["key"], answer["token"])


def test_request_id_of_the_call_is_on_its_entry(api, auth):
    r = api.post("/team/new", {"team_alias": "traced"}, {**auth, "HTTP_X_REQUEST_ID": "trace-42"})

    assert r.status_code == 200, r.content
    assert entries(object_type="team")[0].request_id == "trace-42"


def test_key_update_keeps_only_what_changed(api, auth, generate_key):
    answer = generate_key(max_budget=5, rpm_limit=10)

    api.post("/key/update", {"key": answer["key"], "max_budget": 7, "rpm_limit": 10}, auth)

    entry = entries(action="update")[0]
    assert entry.before == {"max_budget": "5"}
    assert entry.after == {"max_budget": "7"}


def test_block_unblock_regenerate_delete_are_recorded(api, auth, generate_key):
    answer = generate_key(key_alias="cycle")
    key = answer["key"]

    api.post("/key/block", {"key": key}, auth)
    api.post("/key/unblock", {"key": key}, auth)
    regenerated = api.post("/key/regenerate", {"key": key}, auth).json()
    api.post("/key/delete", {"keys": [regenerated["key"]]}, auth)

    actions = [e.action for e in entries(object_type="key")]
    assert actions == ["create", "block", "unblock", "regenerate", "delete"]
    block = entries(action="block")[0]
    assert (block.before, block.after) == ({"blocked": False}, {"blocked": True})
    regenerate = entries(action="regenerate")[0]
    assert regenerate.before["key_name"] == keys.hint(key)
    assert regenerate.after["key_name"] == keys.hint(regenerated["key"])
    assert entries(action="delete")[0].before["key_alias"] == "cycle"
    assert_no_secret(key, regenerated["key"], keys.digest(key), keys.digest(regenerated["key"]))


def test_a_key_acting_is_named_by_its_user_and_hint(api, make_user, make_key, team):
    admin = make_user("ana", team=team, role=TeamMembership.Role.ADMIN)
    _, secret = make_key(user=admin, team=team)

    r = api.post("/key/generate", {"team_id": team.team_id}, bearer(secret))

    assert r.status_code == 200, r.content
    created = entries(object_type="key", action="create")[-1]
    assert created.actor == f"ana ({keys.hint(secret)})"
    assert_no_secret(secret, r.json()["key"])


def test_team_changes_and_members_are_recorded(api, auth, make_user):
    make_user("bo")
    api.post("/team/new", {"team_id": "t-audit", "team_alias": "Audit"}, auth)
    api.post("/team/update", {"team_id": "t-audit", "max_budget": 10}, auth)
    api.post("/team/member_add", {"team_id": "t-audit", "member": {"role": "user", "user_id": "bo"}}, auth)
    api.post("/team/member_delete", {"team_id": "t-audit", "user_id": "bo"}, auth)
    api.post("/team/delete", {"team_ids": ["t-audit"]}, auth)

    found = [(e.action, e.object_type, e.object_id) for e in entries()]
    assert found == [
        ("create", "team", "t-audit"),
        ("update", "team", "t-audit"),
        ("member_add", "membership", "t-audit/bo"),
        ("member_remove", "membership", "t-audit/bo"),
        ("delete", "team", "t-audit"),
    ]
    update = entries(action="update")[0]
    assert (update.before, update.after) == ({"max_budget": None}, {"max_budget": "10"})


def test_user_changes_and_their_first_key_are_recorded(api, auth):
    answer = api.post("/user/new", {"user_id": "cy", "user_email": "cy@example.com"}, auth).json()
    api.post("/user/update", {"user_id": "cy", "user_alias": "Cy"}, auth)
    api.post("/user/delete", {"user_ids": ["cy"]}, auth)

    found = [(e.action, e.object_type) for e in entries()]
    assert found == [("create", "user"), ("create", "key"), ("update", "user"), ("delete", "user")]
    assert entries(action="update")[0].after == {"user_alias": "Cy"}
    assert_no_secret(answer["key"], answer["token"])


def test_model_api_changes_are_recorded_with_the_provider_key_masked(api, auth):
    body = {
        "model_name": "audited",
        "litellm_params": {"model": "mistral/mistral-small-latest", "api_key": PROVIDER_SECRET},
        "model_info": {"id": "m-1"},
    }
    assert api.post("/model/new", body, auth).status_code == 200
    api.post("/model/update", {"model_info": {"id": "m-1"}, "litellm_params": {"rpm": 5}}, auth)
    api.post("/model/delete", {"id": "m-1"}, auth)

    created, updated, deleted = entries(object_type="deployment")
    assert (created.action, updated.action, deleted.action) == ("create", "update", "delete")
    assert created.after["api_key"] == "***" and created.after["model_name"] == "audited"
    assert (updated.before, updated.after) == ({"rpm": None}, {"rpm": 5})
    assert deleted.before["api_key"] == "***"
    assert not Deployment.objects.exists()
    assert_no_secret(PROVIDER_SECRET, "fernet:")


def test_refused_change_leaves_no_entry(api, auth, generate_key):
    answer = generate_key()

    r = api.post("/key/update", {"key": answer["key"], "team_id": "no-such-team"}, auth)

    assert r.status_code == 400
    assert [e.action for e in entries()] == ["create"]


def test_redact_masks_secret_names_and_key_shaped_text():
    redacted = audit.redact(
        {
            "api_key": "plain",
            "credentials": {"aws_secret_access_key": "x"},
            "token": "ab" * 32,
            "key_name": "sk-...abcd",
            "key_alias": "kept",
            "note": "was sk-abcdefghijklmnopqrstuvwxyz then fernet:gAAAA",
            "max_tokens": 5,
            "api_base": "",
        }
    )

    assert redacted == {
        "api_key": "***",
        "credentials": "***",
        "token": "***",
        "key_name": "sk-...abcd",
        "key_alias": "kept",
        "note": "was *** then ***",
        "max_tokens": 5,
        "api_base": "",
    }


def test_outside_a_request_the_actor_is_the_system(make_key):
    key, _ = make_key(key_alias="quiet")

    audit.record("update", key, before={"rpm_limit": None}, after={"rpm_limit": 1})

    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.via, entry.object_id) == ("system", "system", str(key.pk))
    assert VirtualKey.objects.count() == 1
