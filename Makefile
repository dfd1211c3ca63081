# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_PORT ?= 8000
UPSTREAM_PORT ?= 8765
GALLERY := $(VENV)/vscode-gallery
GALLERY_FILES := tests/vscode_gallery/package.json tests/vscode_gallery/package-lock.json
FUNCTIONS := $(VENV)/functions
FUNCTIONS_FILES := tests/functions/package.json tests/functions/package-lock.json

.PHONY: install system-deps lint test check demo bench clean golden

install: $(VENV)/.installed $(GALLERY)/node_modules/.installed $(FUNCTIONS)/node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@# Netlify's own rule matcher, to check the generated _redirects (tests skip it without npm)
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-save --prefix $(VENV)/node netlify-redirector@0.5.0 2>&1 | grep -v nodedir || true; fi
	touch $@

# VS Code's own MCP gallery code, pinned by the lock file, for tests/test_vscode_gallery.py to run
# in node. The stamp lives in node_modules, so it goes with it, and is written only once npm has
# installed it: without npm that test fails and says so, and a later `make install` installs it.
$(GALLERY)/node_modules/.installed: $(GALLERY_FILES) | $(VENV)/.installed
	@if command -v npm >/dev/null 2>&1; then \
		mkdir -p $(GALLERY) && cp $(GALLERY_FILES) $(GALLERY)/ && \
		npm ci --silent --no-audit --no-fund --prefix $(GALLERY) && touch $@; \
	else echo "npm not found: tests/test_vscode_gallery.py needs node and npm (apt-get install nodejs npm)" >&2; fi

# The hosts' own local runtimes, pinned by the lock file, for tests/test_functions.py: wrangler
# (Cloudflare Pages, workerd) and netlify-cli (Netlify Functions). About 600 MB; npm skips
# install scripts, which neither needs (workerd and esbuild come as platform packages).
$(FUNCTIONS)/node_modules/.installed: $(FUNCTIONS_FILES) | $(VENV)/.installed
	@if command -v npm >/dev/null 2>&1; then \
		mkdir -p $(FUNCTIONS) && cp $(FUNCTIONS_FILES) $(FUNCTIONS)/ && \
		npm ci --silent --no-audit --no-fund --prefix $(FUNCTIONS) && touch $@; \
	else echo "npm not found: tests/test_functions.py needs node and npm (apt-get install nodejs npm)" >&2; fi

# The conformance tests run a real nginx and a real Caddy, the browser tests a headless
# Chromium through chromedriver. As root (CI, containers) they are installed from apt
# (command-or-file:package); a system service the packages may start is stopped again.
# nginx computes list queries with njs: its module, and the njs shell to try the engine in.
SERVERS := nginx caddy
NJS_MODULE := /usr/lib/nginx/modules/ngx_http_js_module.so
SYSTEM_DEPS := nginx:nginx $(NJS_MODULE):libnginx-mod-http-js njs:njs caddy:caddy chromium:chromium \
	chromedriver:chromium-driver
system-deps:
	@missing=""; for dep in $(SYSTEM_DEPS); do \
		command=$${dep%%:*}; \
		command -v $$command >/dev/null 2>&1 || test -x /usr/sbin/$$command || test -f $$command || \
			missing="$$missing $${dep#*:}"; \
	done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing && \
		for server in $(SERVERS); do \
			case "$$missing " in *" $$server "*) service $$server stop >/dev/null 2>&1 || true;; esac; \
		done; \
	else \
		echo "Missing:$$missing. The conformance and browser tests need them: install them" \
			"(sudo apt-get install$$missing) or set MCP_MIRROR_SKIP_NGINX=1 / MCP_MIRROR_SKIP_CADDY=1 /" \
			"MCP_MIRROR_SKIP_BROWSER=1 to skip those tests." >&2; \
	fi

lint: install
	$(VENV)/bin/ruff check mirror tests scripts

test: install system-deps lint
	$(PY) -m pytest -q

# The inner loop: the suite without the tests marked (pyproject.toml) slow, node, browser, kill,
# nginx or caddy: no web server, runtime, browser or SIGKILL; `make test` runs everything.
FAST := not (slow or node or browser or kill or nginx or caddy)
check: install lint
	$(PY) -m pytest -q -m "$(FAST)"

demo: install
	$(VENV)/bin/mcp-mirror demo --port $(DEMO_PORT)

bench: install
	$(PY) -m tests.bench

golden: install
	$(PY) -m pytest -q tests/test_render.py --update-golden

clean:
	rm -rf $(VENV) site .site.generations demo
