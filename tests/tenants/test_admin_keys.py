"""Keys in the admin: generated and shown once, then only `sk-...abcd`; actions go through keymanagement."""

import re

import pytest

from tenants import keys
from tenants.models import AuditEntry, VirtualKey

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/tenants/virtualkey/"
GENERATE = "/admin/tenants/virtualkey/generate/"
SHOWN = re.compile(r'<input id="tg-key-\d+"[^>]*value="(sk-[^"]+)"')


def shown_keys(response) -> list[str]:
    return SHOWN.findall(response.content.decode())


def act(admin_client, action: str, *rows: VirtualKey, **extra):
    return admin_client.post(CHANGELIST, {"action": action, "_selected_action": [k.pk for k in rows], **extra})


def test_generate_shows_the_key_once_and_stores_only_its_digest(admin_client, team):
    r = admin_client.post(GENERATE, {"team": team.pk, "key_alias": "ops", "max_budget": "3", "models": "small, big"})

    assert r.status_code == 200, r.content.decode()
    [secret] = shown_keys(r)
    assert "no-store" in r["Cache-Control"]
    assert "Copy" in r.content.decode() and "navigator.clipboard" in r.content.decode()
    key = VirtualKey.objects.get()
    assert key.token == keys.digest(secret) and key.key_name == keys.hint(secret)
    assert key.created_by == "admin:admin"
    assert (key.team, key.key_alias, key.allowed_models, str(key.max_budget)) == (
        team,
        "ops",
        ["small", "big"],
        "3.0000000000",
    )
    for page in (CHANGELIST, f"{CHANGELIST}{key.pk}/change/"):
        html = admin_client.get(page).content.decode()
        assert secret not in html and key.token not in html
        assert key.key_name in html


def test_add_button_leads_to_generate(admin_client):
    r = admin_client.get(f"{CHANGELIST}add/")

    assert r.status_code == 200
    assert "Generate key" in r.content.decode()


def test_generate_with_a_model_the_team_may_not_use_is_refused_on_the_field(admin_client, team):
    team.allowed_models = ["small"]
    team.save()

    r = admin_client.post(GENERATE, {"team": team.pk, "models": "big"})

    assert r.status_code == 200
    assert "big not allowed for team team-a" in r.content.decode()
    assert not shown_keys(r) and not VirtualKey.objects.exists()


def test_generate_with_duration_sets_expiry(admin_client):
    admin_client.post(GENERATE, {"duration": "7d", "budget_duration": "30d"})

    key = VirtualKey.objects.get()
    assert key.expires is not None and key.budget_reset_at is not None


def test_block_and_unblock_actions_refuse_and_restore_the_key(
    admin_client, client, make_key, small, settings, django_capture_on_commit_callbacks
):
    settings.TOLLGATE_AUTH_CACHE_SECONDS = 0
    key, secret = make_key(key_alias="k")
    header = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}

    with django_capture_on_commit_callbacks(execute=True):
        act(admin_client, "block", key)
    blocked = client.get("/v1/models", **header).status_code
    with django_capture_on_commit_callbacks(execute=True):
        act(admin_client, "unblock", key)

    assert blocked == 401
    assert client.get("/v1/models", **header).status_code == 200
    assert [e.action for e in AuditEntry.objects.order_by("id")] == ["block", "unblock"]


def test_regenerate_action_shows_the_new_key_once_and_retires_the_old(admin_client, make_key):
    key, old = make_key(key_alias="rotated")

    r = act(admin_client, "regenerate", key)

    [new] = shown_keys(r)
    key.refresh_from_db()
    assert new != old and key.token == keys.digest(new)
    assert "no-store" in r["Cache-Control"]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.via, entry.actor) == ("regenerate", "admin", "admin")
    assert old not in str(entry.before) and new not in str(entry.after)


def test_delete_action_deletes_through_keymanagement(admin_client, make_key):
    doomed, _ = make_key(key_alias="doomed")
    make_key(key_alias="kept")

    r = act(admin_client, "delete_selected", doomed, post="yes")

    assert r.status_code == 302
    assert list(VirtualKey.objects.values_list("key_alias", flat=True)) == ["kept"]
    assert AuditEntry.objects.get().action == "delete"


def test_delete_from_the_change_page(admin_client, make_key):
    key, _ = make_key(key_alias="gone")

    admin_client.post(f"{CHANGELIST}{key.pk}/delete/", {"post": "yes"})

    assert not VirtualKey.objects.exists()
    assert AuditEntry.objects.get().before["key_alias"] == "gone"


def change_form(key: VirtualKey, **fields) -> dict:
    data = {
        "key_alias": key.key_alias,
        "allowed_models": "[]",
        "max_budget": "",
        "soft_budget": "",
        "budget_duration": "",
        "rpm_limit": "",
        "tpm_limit": "",
        "max_parallel_requests": "",
        "expires_0": "",
        "expires_1": "",
        "aliases": "{}",
        "metadata": "{}",
        "permissions": "{}",
        "allowed_routes": "[]",
    }
    data.update(fields)
    return data


def test_editing_limits_saves_through_update_and_is_audited(admin_client, make_key):
    key, _ = make_key(key_alias="tuned")

    r = admin_client.post(
        f"{CHANGELIST}{key.pk}/change/", change_form(key, max_budget="9", rpm_limit="60", allowed_models='["small"]')
    )

    assert r.status_code == 302, r.content.decode()
    key.refresh_from_db()
    assert (str(key.max_budget), key.rpm_limit, key.allowed_models) == ("9.0000000000", 60, ["small"])
    entry = AuditEntry.objects.get()
    assert entry.action == "update" and entry.via == "admin"
    assert entry.after == {"max_budget": "9", "rpm_limit": 60, "allowed_models": ["small"], "updated_by": "admin:admin"}


def test_a_budget_above_the_teams_is_refused_on_the_field(admin_client, make_key, team):
    team.max_budget = 5
    team.save()
    key, _ = make_key(team=team)

    r = admin_client.post(f"{CHANGELIST}{key.pk}/change/", change_form(key, max_budget="50"))

    assert r.status_code == 200
    assert "cannot exceed the max_budget of team team-a" in r.content.decode()
    key.refresh_from_db()
    assert key.max_budget is None and not AuditEntry.objects.exists()
