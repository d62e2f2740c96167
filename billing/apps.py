from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Usage and billing"

    def ready(self) -> None:
        # A price saved or deleted in this process (the admin) applies on this worker from its next
        # lookup; other workers notice within TOLLGATE_PRICE_CACHE_SECONDS.
        from billing import pricetable
        from billing.models import ModelPrice

        def changed(**kwargs) -> None:
            pricetable.invalidate()

        # weak=False: `changed` is local to this method, so a weak reference would die with it.
        post_save.connect(changed, sender=ModelPrice, weak=False, dispatch_uid="billing-pricetable-save")
        post_delete.connect(changed, sender=ModelPrice, weak=False, dispatch_uid="billing-pricetable-delete")

        # Tenants may not import billing; it reads pending usage through these (tenants/ledger_link.py).
        from billing import ledger, rollup
        from tenants import ledger_link

        ledger_link.connect(uncounted=ledger.uncounted_spend, count=rollup.run)
