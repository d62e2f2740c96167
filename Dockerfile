# Tollgate's production image: gunicorn (gevent workers) for the API, the same image for Celery.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    TOLLGATE_STATIC_ROOT=/app/var/static
WORKDIR /app

COPY pyproject.toml README.md ./
COPY config ./config
COPY proxy ./proxy
COPY tenants ./tenants
COPY billing ./billing
COPY templates ./templates
COPY manage.py ./
COPY examples ./examples
RUN pip install . && useradd --create-home tollgate && mkdir -p /app/var && chown tollgate /app/var
USER tollgate

EXPOSE 4000
CMD ["python", "manage.py", "runproxy", "--config", "/app/config.yaml", "--port", "4000"]
