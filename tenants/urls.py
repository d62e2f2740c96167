"""Management API routes at the root, as LiteLLM serves them (`/key/generate`, `/team/new`, …)."""

from tenants.api import keys, teams, users

urlpatterns = keys.urlpatterns + teams.urlpatterns + users.urlpatterns
