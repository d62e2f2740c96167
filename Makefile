# The README's two commands: `make run` and `make test`. Only Python 3.11+, git and make needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check --quiet
INSTALLED := $(VENV)/.installed
# The legacy Mistral SDK (0.4.2) pins clash with the current one: it lives in its own venv.
LEGACY := .venv-legacy
LEGACY_INSTALLED := $(LEGACY)/.installed
PORT ?= 4000

.PHONY: run test test-fast bench lint format clean

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	@$(BIN)/python -c "import django, gunicorn, mistralai, openai" || (echo "install failed" && exit 1)
	@touch $@

$(LEGACY_INSTALLED):
	@test -x $(LEGACY)/bin/python || $(PYTHON) -m venv $(LEGACY)
	$(LEGACY)/bin/pip --disable-pip-version-check --quiet install 'mistralai==0.4.2' 2>&1 | grep -v "^WARNING: Location" || true
	@$(LEGACY)/bin/python -c "from mistralai.client import MistralClient" || (echo "legacy SDK install failed" && exit 1)
	@touch $@

## run: Tollgate on http://localhost:4000 with the quickstart config (SQLite, no Redis, mock models).
run: $(INSTALLED)
	$(BIN)/python manage.py runproxy --config examples/quickstart.yaml --port $(PORT) --quickstart

## test: the whole suite (unit, API, end-to-end through gunicorn with the real SDKs, browser tests).
# The browser tests (tests/browser/) drive /usr/bin/chromium (apt-get install -y chromium); without
# it they are skipped, and pytest's last lines list them and say why.
test: $(INSTALLED) $(LEGACY_INSTALLED)
	@test -x /usr/bin/chromium || echo "NOTE: /usr/bin/chromium is missing, so the browser tests will be skipped (apt-get install -y chromium)."
	$(BIN)/python -m pytest

## test-fast: everything but the end-to-end tests.
test-fast: $(INSTALLED)
	$(BIN)/python -m pytest -m "not e2e"

## bench: Tollgate vs a direct call vs LiteLLM Proxy on a local fake upstream (see benchmarks/README.md).
bench: $(INSTALLED)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check config proxy tenants billing tests benchmarks manage.py
	$(BIN)/ruff format --check config proxy tenants billing tests manage.py
	$(BIN)/mypy config proxy tenants billing

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(LEGACY) .pytest_cache .ruff_cache
