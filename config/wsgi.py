"""WSGI entry point for gunicorn (see config/gunicorn.py for the worker set-up).

Two Django handlers share the URLs, views and settings. Browser pages (the admin, the dashboard,
the team portal, static files, the API docs) go through the full middleware stack: sessions,
CSRF, auth, messages, security headers. Everything else is the key-authenticated API, where none
of that applies; it gets a handler with only the request-id middleware, which measured ~30% more
requests per second (docs/concurrency.md).
"""

import os

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

BROWSER_PREFIXES = ("/admin", "/static/", "/docs", "/openapi.json", "/dashboard", "/portal")


class ApiHandler(WSGIHandler):
    """Django for the key-authenticated API: the same URLs and views, without browser middleware."""

    def load_middleware(self, is_async: bool = False) -> None:  # type: ignore[override]
        from proxy.middleware import RequestIdMiddleware

        self._view_middleware: list = []
        self._template_response_middleware: list = []
        self._exception_middleware: list = []
        inner = convert_exception_to_response(self._get_response)  # type: ignore[attr-defined]
        self._middleware_chain = convert_exception_to_response(RequestIdMiddleware(inner))  # type: ignore[arg-type]


def dispatch(browser: WSGIHandler, api: WSGIHandler):
    def application(environ, start_response):
        path = environ.get("PATH_INFO", "")
        return (browser if path.startswith(BROWSER_PREFIXES) else api)(environ, start_response)

    return application


application = dispatch(get_wsgi_application(), ApiHandler())
