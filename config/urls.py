"""Root URLs: the public LLM API at the root and under /v1, the admin, the dashboard and team portal,
the schema."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView

from billing.dashboard.urls import portal_urlpatterns

# The LLM API first: URLs are tried in order, and these are the hot ones. Browser pages must
# live under config.wsgi.BROWSER_PREFIXES, which get sessions, CSRF and auth middleware.
urlpatterns = [
    path("", include("tenants.urls")),
    path("", include("billing.urls")),
    path("", include("proxy.model_api")),
    path("v1/", include("proxy.model_api")),
    path("v1/", include("proxy.urls")),
    path("", include("proxy.urls")),
    path("admin/", admin.site.urls),
    path("dashboard/", include("billing.dashboard.urls")),
    path("portal/", include((portal_urlpatterns, "portal_usage"))),
    path("portal/", include("tenants.portal.urls")),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("docs", SpectacularRedocView.as_view(url_name="openapi"), name="docs"),
]

handler404 = "proxy.errors.not_found"
handler500 = "proxy.errors.server_error"
