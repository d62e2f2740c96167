"""The price book in the database: effective dates, the shipped rows, the admin, no query per lookup."""

import importlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.utils import timezone

from billing import pricebook, prices, pricetable
from billing.models import ModelPrice
from proxy.models import Deployment

pytestmark = pytest.mark.django_db

shipped = importlib.import_module("billing.migrations.0002_shipped_prices")

SMALL = "mistral-small-latest"
CHANGELIST = "/admin/billing/modelprice/"
ADD = "/admin/billing/modelprice/add/"


@pytest.fixture(autouse=True)
def price_book():
    """Read the ModelPrice rows as production does, from a fresh copy: rows a test made roll back
    without a signal, so a copy cached by an earlier test could otherwise look current."""
    pricetable.invalidate()
    yield
    pricetable.invalidate()


@pytest.fixture
def small_unpriced():
    """No row for mistral-small-latest, not even the shipped one: each test sets the dates it needs."""
    ModelPrice.objects.filter(model=SMALL).delete()


def deployment(model: str = f"mistral/{SMALL}", **fields) -> Deployment:
    return Deployment(model_name="alias", litellm_model=model, **fields)


def per_million(usd: str) -> Decimal:
    return Decimal(usd) / 1_000_000


def add_price(model: str = SMALL, *, usd_in: str, usd_out: str, start: datetime, **fields) -> ModelPrice:
    return ModelPrice.objects.create(
        price_list="mistral",
        model=model,
        input_cost_per_token=per_million(usd_in),
        output_cost_per_token=per_million(usd_out),
        effective_from=start,
        **fields,
    )


def test_a_database_price_wins_over_the_shipped_one(small_unpriced):
    row = add_price(usd_in="7", usd_out="21", start=timezone.now() - timedelta(minutes=1))

    used = pricebook.price(deployment())

    assert (used.input, used.output) == (per_million("7"), per_million("21"))
    assert used.source == f"list:mistral/{SMALL}@db#{row.pk}"


def test_a_model_without_a_row_keeps_its_shipped_price():
    ModelPrice.objects.filter(model="open-mistral-nemo").delete()

    used = pricebook.price(deployment("mistral/open-mistral-nemo"))

    assert (used.input, used.output) == (prices.NEMO.input, prices.NEMO.output)
    assert used.source == "list:mistral/open-mistral-nemo"


def test_a_future_price_applies_only_once_its_time_comes(small_unpriced):
    now = timezone.now()
    current = add_price(usd_in="7", usd_out="21", start=now - timedelta(days=1))
    future = add_price(usd_in="9", usd_out="27", start=now + timedelta(hours=1))

    assert pricebook.price(deployment()).source.endswith(f"@db#{current.pk}")
    assert pricetable.find("mistral", SMALL, now=now + timedelta(minutes=59)).origin == f"db#{current.pk}"
    later = pricetable.find("mistral", SMALL, now=now + timedelta(hours=1))
    assert (later.input, later.output, later.origin) == (per_million("9"), per_million("27"), f"db#{future.pk}")


def test_a_price_scheduled_before_any_row_leaves_the_shipped_one_until_then(small_unpriced):
    now = timezone.now()
    add_price(usd_in="9", usd_out="27", start=now + timedelta(hours=1))

    assert pricebook.price(deployment()).source == f"list:mistral/{SMALL}"
    assert pricetable.find("mistral", SMALL, now=now + timedelta(hours=2)).input == per_million("9")


def test_the_newest_price_in_effect_wins(small_unpriced):
    now = timezone.now()
    add_price(usd_in="1", usd_out="1", start=now - timedelta(days=30))
    newest = add_price(usd_in="3", usd_out="3", start=now - timedelta(days=1))
    add_price(usd_in="2", usd_out="2", start=now - timedelta(days=10))

    used = pricebook.price(deployment())

    assert (used.input, used.source) == (per_million("3"), f"list:mistral/{SMALL}@db#{newest.pk}")


def test_a_deployments_own_prices_still_win():
    add_price(usd_in="7", usd_out="21", start=timezone.now() - timedelta(minutes=1))
    d = deployment(input_cost_per_token=Decimal("0.000001"), output_cost_per_token=Decimal("0.000002"))

    assert pricebook.price(d) == pricebook.Price(Decimal("0.000001"), Decimal("0.000002"), "deployment")


def test_one_deployment_price_takes_the_other_from_the_database(small_unpriced):
    row = add_price(usd_in="7", usd_out="21", start=timezone.now() - timedelta(minutes=1))

    used = pricebook.price(deployment(input_cost_per_token=Decimal("0.000001")))

    assert (used.input, used.output) == (Decimal("0.000001"), per_million("21"))
    assert used.source == f"deployment+list:mistral/{SMALL}@db#{row.pk}"


def test_a_database_price_applies_to_base_model_and_versions(small_unpriced):
    row = add_price(usd_in="7", usd_out="21", start=timezone.now() - timedelta(minutes=1))

    by_version = pricebook.price(deployment("mistral/mistral-small-2612"))
    by_base = pricebook.price(deployment("hosted_vllm/my-small", model_info={"base_model": f"mistral/{SMALL}"}))

    assert by_version.source == f"list:mistral/{SMALL}@db#{row.pk}"
    assert by_base.source == f"base_model:mistral/{SMALL}@db#{row.pk}"


def test_the_database_max_output_bounds_the_answer(small_unpriced):
    add_price(usd_in="7", usd_out="21", start=timezone.now() - timedelta(minutes=1), max_output_tokens=1234)

    assert pricebook.output_limit(deployment()) == 1234


def test_an_edit_applies_without_a_restart(settings, small_unpriced):
    settings.TOLLGATE_PRICE_CACHE_SECONDS = 3600  # only the save signal can tell this worker
    row = add_price(usd_in="7", usd_out="21", start=timezone.now() - timedelta(minutes=1))
    assert pricebook.price(deployment()).input == per_million("7")

    row.input_cost_per_token = per_million("8")
    row.save()

    assert pricebook.price(deployment()).input == per_million("8")


def test_a_delete_applies_without_a_restart(settings, small_unpriced):
    settings.TOLLGATE_PRICE_CACHE_SECONDS = 3600
    row = add_price(usd_in="7", usd_out="21", start=timezone.now() - timedelta(minutes=1))
    assert pricebook.price(deployment()).input == per_million("7")

    row.delete()

    assert pricebook.price(deployment()).input == prices.SMALL_4.input


def test_another_workers_edit_is_seen_by_the_fingerprint(settings, small_unpriced):
    settings.TOLLGATE_PRICE_CACHE_SECONDS = 0  # check on every lookup
    row = add_price(usd_in="7", usd_out="21", start=timezone.now() - timedelta(minutes=1))
    assert pricebook.price(deployment()).input == per_million("7")

    # An update() sends no signal, as a save in another process reaches this one with none.
    ModelPrice.objects.filter(pk=row.pk).update(
        input_cost_per_token=per_million("8"), updated_at=timezone.now() + timedelta(seconds=1)
    )

    assert pricebook.price(deployment()).input == per_million("8")


def test_a_cached_lookup_makes_no_query(settings, django_assert_num_queries, small_unpriced):
    settings.TOLLGATE_PRICE_CACHE_SECONDS = 60
    add_price(usd_in="7", usd_out="21", start=timezone.now() - timedelta(minutes=1))
    pricebook.price(deployment())  # loads the table

    with django_assert_num_queries(0):
        for _ in range(10):
            assert pricebook.price(deployment()).input == per_million("7")
            assert pricebook.price(deployment("anthropic/claude-3-haiku-20240307")) is not None


def test_the_migration_loaded_every_shipped_price():
    loaded = ModelPrice.objects.filter(effective_from=shipped.SHIPPED_FROM, note=shipped.NOTE)
    if not loaded.exists():  # a transactional test earlier in the run flushed the tables
        shipped.load_shipped(apps, None)

    assert loaded.count() == sum(len(listed) for listed in prices.LISTS.values())
    for row in loaded:
        listed = prices.LISTS[row.price_list][row.model]
        assert (row.input_cost_per_token, row.output_cost_per_token) == (listed.input, listed.output)
        assert row.max_output_tokens == listed.max_output


def test_loading_the_shipped_prices_twice_adds_nothing_and_unloading_keeps_admin_rows():
    shipped.load_shipped(apps, None)
    count = ModelPrice.objects.count()
    mine = add_price(usd_in="7", usd_out="21", start=timezone.now())

    shipped.load_shipped(apps, None)
    assert ModelPrice.objects.count() == count + 1

    shipped.unload_shipped(apps, None)
    assert list(ModelPrice.objects.all()) == [mine]


def test_shipped_rows_price_like_the_shipped_table():
    shipped.load_shipped(apps, None)

    used = pricebook.price(deployment("mistral/mistral-large-2411"))

    assert (used.input, used.output) == (per_million("2"), per_million("6"))
    assert used.source.startswith("list:mistral/mistral-large-2411@db#")


# --- admin ----------------------------------------------------------------------------------------


def form_data(**fields: str) -> dict[str, str]:
    """What the add form posts: a price for mistral-small-latest from 2030-01-01."""
    data = {
        "price_list": "mistral",
        "model": SMALL,
        "input_cost_per_token": "0.000005",
        "output_cost_per_token": "0.000015",
        "max_output_tokens": "",
        "effective_from_0": "2030-01-01",
        "effective_from_1": "00:00:00",
        "note": "",
    }
    data.update(fields)
    return data


def test_admin_pages_render(admin_client):
    row = add_price(usd_in="7", usd_out="21", start=timezone.now() - timedelta(minutes=1), note="list cut")

    changelist = admin_client.get(CHANGELIST)
    assert changelist.status_code == 200
    assert b"$7 / 1M" in changelist.content and b"$21 / 1M" in changelist.content
    assert admin_client.get(ADD).status_code == 200
    change = admin_client.get(f"/admin/billing/modelprice/{row.pk}/change/")
    assert change.status_code == 200
    assert b"in $7 / 1M, out $21 / 1M" in change.content


def test_admin_says_which_price_is_in_effect(admin_client, small_unpriced):
    now = timezone.now()
    old = add_price(usd_in="1", usd_out="1", start=now - timedelta(days=2), note="old")
    current = add_price(usd_in="2", usd_out="2", start=now - timedelta(days=1), note="current")
    add_price(usd_in="3", usd_out="3", start=now + timedelta(days=1), note="next")

    def notes(in_effect: str) -> set[str]:
        r = admin_client.get(CHANGELIST, {"in_effect": in_effect, "q": SMALL, "price_list": "mistral"})
        return {price.note for price in r.context["cl"].result_list if price.model == SMALL}

    assert notes("yes") == {"current"}
    assert notes("scheduled") == {"next"}
    assert "old" in notes("superseded") and "current" not in notes("superseded")
    admin = admin_client.get(CHANGELIST).context["cl"].model_admin
    statuses = {p.pk: admin.status(p) for p in admin.get_queryset(None).filter(pk__in=[old.pk, current.pk])}
    assert statuses == {old.pk: "superseded", current.pk: "yes"}


def test_a_price_added_in_the_admin_applies(admin_client, settings, small_unpriced):
    settings.TOLLGATE_PRICE_CACHE_SECONDS = 3600
    pricebook.price(deployment())  # the table is cached before the edit
    start = timezone.now() - timedelta(minutes=5)

    r = admin_client.post(
        ADD,
        form_data(effective_from_0=f"{start:%Y-%m-%d}", effective_from_1=f"{start:%H:%M:%S}", note="admin"),
    )

    assert r.status_code == 302, r.content
    row = ModelPrice.objects.get(note="admin")
    used = pricebook.price(deployment())
    assert (used.input, used.output) == (Decimal("0.000005"), Decimal("0.000015"))
    assert used.source == f"list:mistral/{SMALL}@db#{row.pk}"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"input_cost_per_token": "-0.000001"}, "input_cost_per_token"),
        ({"output_cost_per_token": "-1"}, "output_cost_per_token"),
        ({"effective_from_0": "", "effective_from_1": ""}, "effective_from"),
        ({"price_list": "mistal"}, "price_list"),
    ],
)
def test_admin_refuses_a_bad_price(admin_client, fields, field):
    r = admin_client.post(ADD, form_data(**fields))

    assert r.status_code == 200
    assert field in r.context["adminform"].form.errors
    assert not ModelPrice.objects.filter(effective_from=datetime(2030, 1, 1, tzinfo=UTC)).exists()


def test_the_ledger_is_read_only_in_the_admin(admin_client):
    from billing.models import UsageRecord

    record = UsageRecord.objects.create(
        request_id="req-1",
        started_at=timezone.now(),
        ended_at=timezone.now(),
        endpoint="chat",
        key_hash="f" * 64,
        key_name="sk-...abcd",
        status=200,
        cost=Decimal("0.001"),
    )

    changelist = admin_client.get("/admin/billing/usagerecord/")
    assert changelist.status_code == 200
    assert b"req-1" in changelist.content and b"sk-...abcd" in changelist.content
    assert b"f" * 64 not in changelist.content
    detail = admin_client.get(f"/admin/billing/usagerecord/{record.pk}/change/")
    assert detail.status_code == 200 and b"f" * 64 not in detail.content
    assert admin_client.get("/admin/billing/usagerecord/add/").status_code == 403
    assert admin_client.post(f"/admin/billing/usagerecord/{record.pk}/delete/").status_code == 403
    assert admin_client.get("/admin/billing/usagerecord/", {"status_class": "ok"}).status_code == 200
    assert admin_client.get("/admin/billing/dailyusage/").status_code == 200
