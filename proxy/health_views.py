"""GET /health (model health, admins only) and GET /metrics (Prometheus).

Kept apart from proxy/views.py: neither is on the LLM hot path, and both answer operators.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from proxy import health, metrics, router
from proxy.views import ProxyView, _json
from tenants import auth
from tenants.exceptions import NotPermitted


class HealthView(ProxyView):
    """GET /health[?model=alias]: a real minimal call to each enabled deployment (proxy/health.py).

    Master key or a proxy_admin's key: the report names every deployment and its api_base, and
    each probe is a paid call.
    """

    def get(self, request: HttpRequest) -> HttpResponse:
        if not self.caller.is_admin:
            raise NotPermitted("GET /health needs the master key or a proxy_admin's key.", code="not_admin")
        alias = request.GET.get("model") or None
        if alias is not None:
            router.resolve(alias)  # 404 for an unknown alias, rather than an empty report
        return _json(health.check(alias))


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics: Prometheus exposition, summed over every worker of this instance.

    Open, as LiteLLM's: serve it on the internal network. TOLLGATE_METRICS_REQUIRE_KEY=1 asks
    for the master key (or a proxy_admin's) instead.
    """
    if settings.TOLLGATE_METRICS_REQUIRE_KEY:
        from proxy import errors

        try:
            caller = auth.authenticate(request)
            if not caller.is_admin:
                raise NotPermitted("GET /metrics needs the master key or a proxy_admin's key.", code="not_admin")
        except Exception as e:
            return errors.response(e)
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)
