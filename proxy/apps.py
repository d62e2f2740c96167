from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class ProxyConfig(AppConfig):
    name = "proxy"
    verbose_name = "Models and routing"

    def ready(self) -> None:
        # A deployment saved or deleted in this process (admin, /model/*, loadconfig) is served by
        # this worker from its next request; other workers notice within the deployment cache time.
        from proxy import router
        from proxy.models import Deployment

        def changed(**kwargs) -> None:
            router.invalidate()

        post_save.connect(changed, sender=Deployment, weak=False, dispatch_uid="proxy-router-save")
        post_delete.connect(changed, sender=Deployment, weak=False, dispatch_uid="proxy-router-delete")

        from django.conf import settings

        from config import database as tollgate_database

        database = settings.DATABASES["default"]
        if database["ENGINE"] == "django.db.backends.sqlite3" and not settings.TESTING:
            tollgate_database.anchor(str(database["NAME"]))
