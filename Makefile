VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: setup peers run test lint typecheck bench conformance soak clean

UI_STAMP := src/clearsight/web_dist/.stamp
OIDC_STAMP := tests/peers/oidc/node_modules/.package-lock.json

setup: $(VENV)/.stamp $(UI_STAMP)

# Rebuild when the packaging, a native (Cython) source or (when CLEARSIGHT_COMPILED_PYTHON=1 asks
# for them) a compiled Python module changes.
COMPILED_PY := $(if $(filter-out 0,$(CLEARSIGHT_COMPILED_PYTHON)),$(shell grep -v '^\#' native_python.txt))
$(VENV)/.stamp: pyproject.toml setup.py scripts/setup.sh native_python.txt $(COMPILED_PY) $(shell find src -name '*.pyx' -o -name '*.pxd')
	bash scripts/setup.sh

# The web UI, rebuilt only when a file under web/ changed (scripts/build-ui.sh: npm ci + vite build).
$(UI_STAMP): $(shell find web -path web/node_modules -prune -o -type f -print 2>/dev/null) scripts/build-ui.sh
	bash scripts/build-ui.sh

peers: $(OIDC_STAMP)
	bash scripts/install-peers.sh

# The real OpenID provider of the SSO tests (npm oidc-provider, tests/peers/oidc), installed from its lock file.
$(OIDC_STAMP): tests/peers/oidc/package-lock.json
	cd tests/peers/oidc && npm ci --no-audit --no-fund --loglevel=error

## Start the server on the embedded store in ./data and print its URL; once it is ready, a local
## agent ships this host's metrics to it (AGENT=0: server only; see scripts/run.sh and docs/agent.md).
run: setup
	@PY=$(PY) bash scripts/run.sh $(ARGS)

## Install everything, then run lint, type checks and the whole test suite; without ARGS, then the
## open latency targets on this machine (bench/ci.py: printed, never failing on a figure).
test: setup peers
	$(PY) -m ruff check src tests bench
	$(PY) -m mypy
	@# A fresh base temporary directory per run, removed afterwards: pytest's own clean-up of old runs
	@# under the shared /tmp/pytest-of-$$USER raced with leftovers there (an unclosed scandir iterator
	@# in _pytest/pathlib.py, an error under filterwarnings=error) and failed a CI run after every test passed.
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/clearsight-pytest.XXXXXX") && \
	echo "$(PY) -m pytest -n 2 --dist loadgroup -p no:cacheprovider --basetemp=$$tmp $(ARGS)" && \
	{ $(PY) -m pytest -n 2 --dist loadgroup -p no:cacheprovider --basetemp="$$tmp" $(ARGS); rc=$$?; \
	  rm -rf "$$tmp"; exit $$rc; }
	@if [ -z "$(ARGS)" ]; then $(PY) bench/ci.py; fi

lint: setup
	$(PY) -m ruff check src tests bench

typecheck: setup
	$(PY) -m mypy

bench: setup peers
	$(PY) bench/run.py $(ARGS)

## Soak and chaos for an hour (24 h of data, kill -9 six times); prints its figures. ARGS=--minutes 5 for less.
soak: setup
	$(PY) bench/soak.py $(ARGS)

conformance: setup
	$(PY) -m tests.conformance.promqltest_runner $(ARGS)

clean:
	rm -rf $(VENV) build src/*.egg-info
