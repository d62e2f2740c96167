"""Saving a key, team or deployment — from the admin, the API or a shell — reaches every cache.

The receivers are connected in AppConfig.ready(); a receiver held only weakly would be collected
with ready()'s frame, and a blocked key would go on working from the cache. Collect garbage first.
"""

import gc
import time

from django.conf import settings

from proxy import router
from proxy.models import Deployment
from tenants import keys
from tenants.models import Generation, VirtualKey


def test_a_key_change_moves_the_tenants_generation_after_garbage_collection(db, django_capture_on_commit_callbacks):
    gc.collect()
    key, _ = keys.create()
    before = generation_value()

    with django_capture_on_commit_callbacks(execute=True):
        VirtualKey.objects.get(pk=key.pk).save()

    assert generation_value() == before + 1


def generation_value() -> int:
    return Generation.objects.filter(name="tenants").values_list("value", flat=True).first() or 0


def test_a_deployment_change_invalidates_the_router_after_garbage_collection(db):
    router.table()
    router._table.checked_at = time.monotonic() + settings.TOLLGATE_DEPLOYMENT_CACHE_SECONDS + 60
    gc.collect()

    Deployment.objects.create(model_name="x", litellm_model="mistral/mistral-small-latest")

    assert router._table.checked_at == 0.0
