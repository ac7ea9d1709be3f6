# Every target bootstraps its own environment: uv (installed with pip if missing) and the locked workspace.
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := python3 -m uv
endif
RUN := $(UV) run --all-packages --locked
SOURCES := schemas ingest-gateway stream-processors batch-rollups dashboards deploy sdks tests bench conftest.py

.PHONY: up test test-tools bench bench-tools lint fmt schemas clean

.venv/.synced: uv.lock pyproject.toml */pyproject.toml deploy/local/pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --all-packages --locked --python 3.11
	@touch $@

up: .venv/.synced
	$(RUN) pravis up

# The JS SDK's end-to-end tests drive a real headless Chromium (Debian's package; browsers cannot be downloaded).
# The alert tests run a real Alertmanager and Prometheus' promtool (Debian's packages).
test-tools:
	@command -v node >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null; }
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v promtool >/dev/null && command -v prometheus-alertmanager >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		prometheus prometheus-alertmanager >/dev/null; }

test: .venv/.synced test-tools
	node --test sdks/js/tests/ dashboards/tests/js/
	$(RUN) pytest $(PYTEST_ARGS)

# wrk and hey (Debian) generate the load: C and Go cost the 2-core machine far less CPU than a Python client.
bench-tools:
	@command -v wrk >/dev/null && command -v hey >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk hey >/dev/null; }

bench: .venv/.synced bench-tools
	$(RUN) python -m bench.gateway
	$(RUN) python -m bench.stream
	$(RUN) python -m bench.warehouse
	$(RUN) python -m bench.funnels
	$(RUN) python -m bench.privacy_export
	$(RUN) python -m bench.surveys
	$(RUN) python -m bench.soak
	$(RUN) python -m bench.e2e
	$(RUN) python -m bench.alert_sinks

lint: .venv/.synced
	$(RUN) ruff check $(SOURCES)
	$(RUN) ruff format --check $(SOURCES)

fmt: .venv/.synced
	$(RUN) ruff check --fix $(SOURCES)
	$(RUN) ruff format $(SOURCES)

schemas: .venv/.synced
	$(RUN) pravis-schemas-export schemas/json

clean:
	rm -rf .venv .pravis artifacts .pytest_cache .ruff_cache
