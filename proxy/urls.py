"""Public LLM API routes; config/urls.py mounts them both at the root and under /v1/."""

from django.urls import path

from proxy import health_views, views

urlpatterns = [
    path("chat/completions", views.ChatCompletionsView.as_view()),
    path("completions", views.CompletionsView.as_view()),
    path("fim/completions", views.FimCompletionsView.as_view()),
    path("embeddings", views.EmbeddingsView.as_view()),
    path("models", views.ModelsView.as_view()),
    path("models/<path:model_id>", views.ModelDetailView.as_view()),
    path("health/liveliness", views.liveliness),
    path("health/liveness", views.liveliness),
    path("health/readiness", views.readiness),
    path("health", health_views.HealthView.as_view()),
    path("metrics", health_views.metrics_view),
]
