# The two commands: `make run` (the server) and `make test` (the test suite).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: run test lint bench-chat bench-protocol bench-federation bench-memory bench-join bench-fuzz soak

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(PY) -m chat.launcher run

test: $(VENV)/.installed
	@bash tests/install-browser.sh
	$(PY) -m chat.launcher test $(ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy accounts rooms chat federation
	$(VENV)/bin/lint-imports

bench-chat: $(VENV)/.installed
	$(PY) -m bench.chat_bench $(ARGS)

bench-protocol: $(VENV)/.installed
	$(PY) -m bench.protocol_bench $(ARGS)

bench-federation: $(VENV)/.installed
	$(PY) -m bench.federation_bench $(ARGS)

bench-memory: $(VENV)/.installed
	$(PY) -m bench.memory_bench $(ARGS)

bench-join: $(VENV)/.installed
	$(PY) -m bench.join_bench $(ARGS)

soak: $(VENV)/.installed
	$(PY) -m bench.soak $(ARGS)

bench-fuzz: $(VENV)/.installed
	$(PY) -m bench.fuzz_federation $(ARGS)
