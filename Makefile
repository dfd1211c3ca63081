# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_PORT ?= 8000
UPSTREAM_PORT ?= 8765

.PHONY: install test demo bench clean golden

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

test: install
	$(PY) -m pytest -q

demo: install
	$(VENV)/bin/mcp-mirror demo --port $(DEMO_PORT)

bench: install
	$(PY) -m tests.bench

golden: install
	$(PY) -m pytest -q tests/test_render.py --update-golden

clean:
	rm -rf $(VENV) site/v0.1 site/index.html demo
