PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test bench fuzz soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/hypercorn arcane:app --worker-class uvloop --bind $(HOST):$(PORT) --backlog 4096

# Types first (strict, on arcane/: [tool.mypy] in pyproject.toml), then the suite.
test: $(VENV)/.installed-test
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# This server against bare python-socketio, Flask-SocketIO/eventlet and Node socket.io;
# writes docs/benchmarks.md and docs/benchmarks.png (takes several minutes).
bench: $(VENV)/.installed-bench
	bash bench/peers/setup.sh
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The property-based fuzzer with many more examples and a fresh seed (CI runs a fixed seed and few):
# FUZZ_EXAMPLES=N to change the count.
fuzz: $(VENV)/.installed-test
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -p no:cacheprovider tests/test_fuzz.py $(PYTEST_ARGS)

# Ten minutes of game night with churn and restarts (SOAK_SECONDS, SOAK_GAMES, SOAK_RESTARTS);
# not in CI. Exits non-zero on a lost event, a gap, a duplicate or unbounded RSS or descriptors.
soak: $(VENV)/.installed-test
	$(BIN)/python bench/soak.py --json soak.json

clean:
	rm -rf $(VENV) .pytest_cache test-output
