"""Management API: /user/* routes (LiteLLM-compatible)."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
