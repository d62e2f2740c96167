"""/portal/…: sign-in and password reset (Django's own views), a member's teams and keys."""

from django.contrib.auth import views as auth
from django.urls import path, reverse_lazy

from tenants.portal import members, views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", auth.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        auth.PasswordResetConfirmView.as_view(success_url=reverse_lazy("portal:password_reset_complete")),
        name="password_reset_confirm",
    ),
    path("password-reset/done/", auth.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("teams/<str:team_id>/", views.team, name="team"),
    path("teams/<str:team_id>/keys/new", views.key_create, name="key_create"),
    path("teams/<str:team_id>/keys/<int:pk>/block", views.key_block, name="key_block"),
    path("teams/<str:team_id>/keys/<int:pk>/delete", views.key_delete, name="key_delete"),
    path("teams/<str:team_id>/members/", members.members, name="members"),
    path("teams/<str:team_id>/members/add", members.member_add, name="member_add"),
    path("teams/<str:team_id>/members/<int:pk>/role", members.member_role, name="member_role"),
    path("teams/<str:team_id>/members/<int:pk>/remove", members.member_remove, name="member_remove"),
]
