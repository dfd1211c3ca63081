# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_PORT ?= 8000
UPSTREAM_PORT ?= 8765

.PHONY: install system-deps test demo bench clean golden

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# The conformance tests run a real nginx. As root (CI, containers) it is installed from
# apt; the Debian package may start a system nginx on port 80, which is stopped again.
system-deps:
	@if command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nginx \
			&& { service nginx stop >/dev/null 2>&1 || true; }; \
	elif [ "$$MCP_MIRROR_SKIP_NGINX" != 1 ]; then \
		echo "nginx is not installed: the conformance tests will fail. Install it" \
			"(sudo apt-get install nginx) or set MCP_MIRROR_SKIP_NGINX=1 to skip them." >&2; \
	fi

test: install system-deps
	$(PY) -m pytest -q

demo: install
	$(VENV)/bin/mcp-mirror demo --port $(DEMO_PORT)

bench: install
	$(PY) -m tests.bench

golden: install
	$(PY) -m pytest -q tests/test_render.py --update-golden

clean:
	rm -rf $(VENV) site/v0.1 site/index.html demo
