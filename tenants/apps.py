from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Keys and teams"

    def ready(self) -> None:
        # Any saved or deleted key, user, team or membership — API, admin or shell — moves the
        # tenants generation, so cached key records everywhere are dropped within a second.
        # (QuerySet.update() sends no signal: code that uses it calls generation.bump() itself.)
        from tenants import generation
        from tenants.models import InternalUser, Team, TeamMembership, VirtualKey

        def changed(**kwargs) -> None:
            generation.bump()

        for model in (VirtualKey, Team, InternalUser, TeamMembership):
            post_save.connect(
                changed, sender=model, weak=False, dispatch_uid=f"tenants-generation-save-{model.__name__}"
            )
            post_delete.connect(
                changed, sender=model, weak=False, dispatch_uid=f"tenants-generation-delete-{model.__name__}"
            )
