# Two commands matter: `make run` (the main job) and `make test` (the test suite).
# Both create .venv and install everything on first use. `make help` lists every target.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help install run exp exps test test-fast lint ui server params read scans bench clean
.DEFAULT_GOAL := help

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@# PostgreSQL (Debian's package) for the shared tracking server and its tests; root only
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
		else echo "note: no PostgreSQL and not root: make server and its tests need it" \
			"(sudo apt-get install postgresql); the main job does not"; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its tools

run: install  ## the main job: dvc repro (prepare → train → evaluate → predict-scans → scan-benchmark)
	$(BIN)/dvc repro

exp: install  ## a DVC experiment, overrides checked before DVC starts: make exp S="model=lenet5 train.epochs=3"
	@test -n "$(S)" || { echo 'error: make exp needs overrides, e.g. make exp S="train.epochs=3"' >&2; exit 2; }
	@$(BIN)/python -m digitpipe.commands.params --exp-run $(S)

exps: install  ## the DVC experiments side by side: model, epochs, validation images, time, val, test, scans
	@$(BIN)/dvc exp show --drop '.*' --keep 'Experiment|Created|model.name|train.epochs|data.val_size|train_time_s|val.accuracy|test.accuracy|scans.accuracy|scan_benchmark.accuracy'

test: install  ## the whole test suite (tiny data, 1 epoch; real dvc, MLflow, Hydra, PostgreSQL, Ray)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-fast: install  ## the quick part of the suite (no training): pytest -m "not slow"
	$(BIN)/python -m pytest -q -m "not slow"

lint: install  ## ruff check + format check
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

ui: install  ## MLflow UI on the project's store: http://127.0.0.1:5000 (prints the runs-table link)
	@echo "runs table: http://127.0.0.1:5000/#/experiments/$$($(BIN)/python -m digitpipe.commands.ui_link)/runs?workflowType=machine_learning"
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db \
		--default-artifact-root $(CURDIR)/mlruns/artifacts --host 127.0.0.1 --port 5000

server: install  ## shared MLflow server: PostgreSQL backend, proxied artifacts, on :5001 (.server/); ARGS="--host 0.0.0.0"
	$(BIN)/python -m digitpipe.commands.server $(ARGS)

params: install  ## recompose params.yaml from conf/ (after editing conf/), e.g. make params ARGS=model=lenet5
	$(BIN)/python -m digitpipe.commands.params $(ARGS)

read: install  ## what the model reads in your pictures, nothing written: make read P="photo.jpg folder/" [ARGS="--model models:/digit-classifier@champion"]
	@test -n "$(P)" || { echo 'error: make read needs pictures or folders, e.g. make read P=data/scans' >&2; exit 2; }
	@$(BIN)/python -m digitpipe.commands.read $(P) $(ARGS)

scans: install  ## regenerate the committed sample scans in data/scans
	$(BIN)/python -m digitpipe.commands.make_scans --out data/scans

bench: install  ## speed and memory benchmarks, not part of the tests (ARGS="--only frontier --presets fast")
	$(BIN)/python -m bench $(ARGS)

clean:  ## remove outputs, sweeps and single runs, reports, prepared data (sweeps' too), plots
	rm -rf outputs multirun runs reports data/prepared data/cache data/scan-benchmark dvc_plots
