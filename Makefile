# Two commands matter: `make run` (the main job) and `make test` (the test suite).
# Both create .venv and install everything on first use.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install run test lint ui params scans bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install  ## the main job: prepare → train → evaluate → predict-scans on the default config
	$(BIN)/dvc repro

test: install  ## the whole test suite (tiny data, 1 epoch)
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

ui: install  ## MLflow UI on the project's store: http://127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db \
		--default-artifact-root $(CURDIR)/mlruns/artifacts --host 127.0.0.1 --port 5000

params: install  ## recompose params.yaml from conf/ (after editing conf/)
	$(BIN)/python -m digitpipe.params

scans: install  ## regenerate the committed sample scans in data/scans
	$(BIN)/python -m digitpipe.sample_scans --out data/scans

bench: install  ## speed and memory benchmarks (not part of the tests)
	$(BIN)/python -m bench

clean:
	rm -rf outputs multirun reports data/prepared
