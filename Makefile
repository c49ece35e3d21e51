# Set-up for this CPU machine: a local .venv with the CPU build of torch pinned by
# constraints-cpu.txt (GPU clusters install their own CUDA torch; see cluster/).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export RAY_AUTH_MODE := disabled

.PHONY: demo test test-fast lint clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml constraints-cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints-cpu.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/f3ocus grid experiments/demo_grid.yaml

# tests that start their own Ray head run in a second pytest process, apart from the
# session's local Ray
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not isolated" tests
	bash tests/system_deps/postgresql.sh
	sh tests/system_deps/chromium.sh
	$(BIN)/python -m pytest -q -m isolated tests

# the unit tests alone: no Ray, no end-to-end run (under 2 minutes)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not isolated" tests

lint: $(STAMP)
	$(BIN)/ruff check f3ocus_ray tests bench
	$(BIN)/ruff format --check f3ocus_ray tests bench
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) runs data mlflow.db reports ray_results
