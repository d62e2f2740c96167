"""/dashboard/… for staff, and the portal's usage tab (/portal/teams/<team_id>/usage/)."""

from django.urls import path

from billing.dashboard import portal, views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("teams/<str:team_id>/", views.team, name="team"),
    path("keys/<int:pk>/", views.key, name="key"),
]

portal_urlpatterns = [
    path("teams/<str:team_id>/usage/", portal.team_usage, name="team_usage"),
]
