# Tổng Hợp — two commands on a fresh machine: `make demo` and `make test`.
# Everything installs from uv.lock into .venv; all state lives under var/ (git-ignored).

SHELL        := /bin/bash
PYTHON       ?= python3
UV_VERSION   := 0.13.9
TOOLS        := .tools
UV           := $(TOOLS)/bin/uv
VENV         := .venv
BIN          := $(VENV)/bin
VAR          := $(CURDIR)/var
TENANT       ?= ninh-binh
ROWS         ?= 20000
APP_PORT     ?= 8501
AIRFLOW_PORT ?= 8080
DEMO_PORT    ?= 8765

export TONGHOP_HOME                       ?= $(VAR)
export AIRFLOW_HOME                       ?= $(VAR)/airflow
export AIRFLOW__CORE__DAGS_FOLDER         := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES       := False
export AIRFLOW__CORE__PARALLELISM         := 4
export AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG := 2
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS := admin:admin
export AIRFLOW__API__HOST                 := 127.0.0.1
export AIRFLOW__API__PORT                 := $(AIRFLOW_PORT)
# Task runners call the execution API: it must follow the API's port (else "Connection refused" on 8080).
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL := http://127.0.0.1:$(AIRFLOW_PORT)/execution/
# Tenant DAGs run on their schedules as soon as Airflow sees them (`tonghop airflow sync-pools --unpause`
# unpauses those an earlier start created paused).
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION := False
export AIRFLOW__LOGGING__LOGGING_LEVEL    := WARNING
export GX_ANALYTICS_ENABLED               := false
export STREAMLIT_BROWSER_GATHER_USAGE_STATS := false
export PATH                               := $(CURDIR)/$(BIN):$(PATH)

# The demo province's LGSP REST API and CKAN portal (its `api`/`ckan` sources), in the background of one
# recipe line and stopped when that line ends. Used by `demo` and `airflow`.
START_DEMO_SERVER = export TONGHOP_DEMO_PORT=$(DEMO_PORT) NB_LGSP_TOKEN=$${NB_LGSP_TOKEN:-demo-lgsp-token-ninh-binh} \
	  BKHCN_API_TOKEN=$${BKHCN_API_TOKEN:-demo-bkhcn-api-key}; \
	  rm -f $(VAR)/demo-serve.log; \
	  $(BIN)/tonghop demo-serve --port $(DEMO_PORT) --rows $(ROWS) > $(VAR)/demo-serve.log 2>&1 & server=$$!; \
	  trap 'kill $$server 2> /dev/null; wait $$server 2> /dev/null' EXIT; \
	  for i in $$(seq 18000); do grep -q "CKAN:" $(VAR)/demo-serve.log && break; \
	    kill -0 $$server 2> /dev/null || { cat $(VAR)/demo-serve.log; echo "demo server did not start"; exit 1; }; \
	    if [ $$i = 50 ]; then echo "    waiting for the demo portals: they build their data ($(ROWS) rows) first"; fi; \
	    sleep 0.1; done; \
	  grep -q "CKAN:" $(VAR)/demo-serve.log \
	    || { echo "demo portals not listening after 30 min: see $(VAR)/demo-serve.log"; exit 1; };

.PHONY: setup test-deps demo test lint airflow airflow-init app run clean help bench

help:
	@echo "make demo     set up, build the demo province, run its pipeline through Airflow, serve the app"
	@echo "make test     set up, lint (ruff incl. AIR rules) and run the whole test suite"
	@echo "make airflow  Airflow scheduler + web UI on 127.0.0.1:$(AIRFLOW_PORT) with every tenant's DAG"
	@echo "make app      serve the Streamlit app on 127.0.0.1:$(APP_PORT)"
	@echo "make bench    run every benchmark, rewrite the summary table of docs/performance.md"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# The project environment, exactly as locked. Re-synced whenever the lock file changes.
$(BIN)/tonghop: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

setup: $(BIN)/tonghop

# The pseudonymisation key: a secret of this installation, generated once, never committed.
$(VAR)/pii.key:
	@mkdir -p $(VAR) && umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_hex(32))" > $@

airflow-init: setup $(VAR)/pii.key
	@mkdir -p $(AIRFLOW_HOME)
	@$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/db-migrate.log; exit 1)
	@$(BIN)/tonghop airflow sync-pools --unpause > $(AIRFLOW_HOME)/sync-pools.log 2>&1 \
	  || (cat $(AIRFLOW_HOME)/sync-pools.log; exit 1)
	@echo "Airflow metadata ready in $(AIRFLOW_HOME) (SQLite), one pool per tenant warehouse (tonghop airflow sync-pools)"

demo: airflow-init
	@echo "==> [1/3] generating demo province '$(TENANT)' ($(ROWS) dossiers)"
	$(BIN)/tonghop demo --tenant $(TENANT) --rows $(ROWS)
	@echo "==> [2/3] running its pipeline through Airflow (dags test tonghop_$(TENANT)); its LGSP API and"
	@echo "    open-data portal are served on 127.0.0.1:$(DEMO_PORT) meanwhile (DEMO_PORT=… to change)"
	@$(START_DEMO_SERVER) \
	  TONGHOP_PII_KEY=$$(cat $(VAR)/pii.key) AIRFLOW__LOGGING__LOGGING_LEVEL=INFO \
	  $(BIN)/airflow dags test tonghop_$(TENANT) > $(VAR)/demo-dag-run.log 2>&1 \
	  || (grep -E "ERROR|Error|error:" $(VAR)/demo-dag-run.log | tail -n 20; \
	      echo "DAG run failed: full log in $(VAR)/demo-dag-run.log"; exit 1)
	@grep -oE "\[DAG TEST\] end task task_id=[a-z_]+|DagRun Finished: dag_id=[^,]+|run_duration=[0-9.]+|state=[a-z]+, run_type" \
	  $(VAR)/demo-dag-run.log | sed 's/, run_type//' | tr '\n' ' '; echo
	@echo "    full Airflow log: $(VAR)/demo-dag-run.log"
	@if grep -qE "source '[a-z_]+' skipped:" $(VAR)/demo-dag-run.log; then \
	  sed -nE "s/.*source '([a-z_]+)' skipped: (.*)/  \1: \2/p" $(VAR)/demo-dag-run.log | cut -c1-220 | sort -u; \
	  echo "demo incomplete: the sources above were skipped (full log in $(VAR)/demo-dag-run.log)"; exit 1; fi
	@$(BIN)/tonghop users demo --tenant $(TENANT)  # one demo account per role, new passwords printed
	@echo "==> [3/3] serving the app"
	@$(MAKE) --no-print-directory app

app: setup
	@echo "App: http://127.0.0.1:$(APP_PORT)  (Ctrl+C to stop)"
	TONGHOP_TENANT=$(TENANT) $(BIN)/streamlit run apps/main.py --server.address 127.0.0.1 \
	  --server.port $(APP_PORT) --server.headless true

run: setup $(VAR)/pii.key
	TONGHOP_PII_KEY=$$(cat $(VAR)/pii.key) $(BIN)/tonghop run --tenant $(TENANT)

# The LocalExecutor that counts its running tasks (pipelines/airflow_executor.py: the scheduler queues at most
# `parallelism` tasks, so no task waits on the workers' queue until its token expires) and a queued task's
# token lifetime sized to a long queue (docs/deployment.md).
AIRFLOW_LOCAL_CLUSTER = AIRFLOW__CORE__EXECUTOR=pipelines.airflow_executor.TenantLocalExecutor \
	  AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT=7200

airflow: airflow-init
	@echo "Airflow UI: http://127.0.0.1:$(AIRFLOW_PORT)  user 'admin', password in"
	@echo "  $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated (written at first start)"
	@echo "  the demo province's LGSP API and CKAN portal run on 127.0.0.1:$(DEMO_PORT) alongside"
	@echo "  tenant DAGs are unpaused: each runs on its schedule (Trigger to run one now)"
	@$(START_DEMO_SERVER) TONGHOP_PII_KEY=$$(cat $(VAR)/pii.key) $(AIRFLOW_LOCAL_CLUSTER) $(BIN)/airflow standalone

# What the tests drive besides Python, from Debian: Chromium for the end-to-end browser test (Playwright
# cannot download its own browsers here) and MariaDB for the `mysql` source tests (its service is not
# started: the test fixture runs a throwaway server on a random loopback port).
test-deps:
	@missing=""; \
	 command -v chromium > /dev/null 2>&1 || missing="chromium"; \
	 { command -v mariadbd || test -x /usr/sbin/mariadbd; } > /dev/null 2>&1 || missing="$$missing mariadb-server"; \
	 if [ -n "$$missing" ]; then \
	   echo "installing Debian's $$missing for the tests"; \
	   SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	   $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing > /dev/null; \
	 fi

lint: setup
	$(BIN)/ruff check .

# The suite runs on both cores (pytest-xdist), a test module per worker: module and session fixtures (a built
# test warehouse, Airflow's migrated metadata) are built once per worker. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: setup test-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# Every benchmark, then one summary table rewritten in docs/performance.md (`make bench BENCH=quick`: small
# sizes, a few minutes). Needs the test tools (PostgreSQL from the machine, MariaDB from Debian).
bench: setup test-deps
	$(BIN)/python benchmarks/run_all.py $(if $(filter quick,$(BENCH)),--quick,)

clean:
	rm -rf $(VAR) .pytest_cache .ruff_cache apps/static/data_docs
