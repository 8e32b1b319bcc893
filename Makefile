# Linebridge developer commands. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# pytest-xdist workers for `make test`. Most tests wait on sockets, processes and timers rather than
# compute, so three workers on two cores finish in about half the time of one (TEST_WORKERS=0: one process).
TEST_WORKERS ?= 3

.PHONY: demo test hil broker browser bench bench-quick fuzz protos protos-check lint venv clean help

help:
	@echo "make demo    run the bridge with a simulated cell (Ctrl-C to stop)"
	@echo "make test    run the whole test suite (installs Debian's mosquitto via apt-get first when root)"
	@echo "make hil     run the conformance checks and all 14 HIL fault scenarios on the simulated cell (~10 min) -> hil-report/"
	@echo "make broker  only make sure a mosquitto binary exists (what make test does first)"
	@echo "make browser only make sure a chromium binary exists (make test does this too)"
	@echo "make bench   run every benchmark scenario (~8 min) -> bench/results/latest.{json,md}"
	@echo "make bench-quick  every scenario briefly (< 3 min) -> bench/results/quick.{json,md}"
	@echo "make fuzz    run every atheris fuzz target for FUZZ_SECONDS (30) each; findings in fuzz/crashes/"
	@echo "make protos  regenerate bridge/api/gen from protos/"
	@echo "make lint    buf lint + ruff"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Linebridge needs Python 3.11 or newer; found " + sys.version.split()[0] + " (set PYTHON=python3.x)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/linebridge demo

# The system programs the tests run are checked before the venv is built, so a machine that cannot get
# them stops at once. Each script prints the binary's path: mosquitto's directory goes on PATH, the
# browser's path into LINEBRIDGE_CHROMIUM for the browser tests.
test:
	@broker="$$(sh scripts/ensure_broker.sh)" && browser="$$(sh scripts/ensure_browser.sh)" && \
	  $(MAKE) --no-print-directory venv && \
	  PATH="$${broker%/*}:$$PATH" LINEBRIDGE_CHROMIUM="$$browser" $(BIN)/python -m pytest -q -n $(TEST_WORKERS)

broker:
	@sh scripts/ensure_broker.sh

# Conformance checks + every scenario in hil_tests/scenarios on the simulated cell; reports in hil-report/.
hil:
	@broker="$$(sh scripts/ensure_broker.sh)" && $(MAKE) --no-print-directory venv && \
	  PATH="$${broker%/*}:$$PATH" $(BIN)/linebridge hil run hil_tests/rigs/simulated-cell.yaml --report hil-report

browser:
	@sh scripts/ensure_browser.sh

# Benchmarks never run in `make test`; they measure, they do not assert. ARGS="--only fanout" narrows.
bench: $(STAMP)
	$(BIN)/python -m bench.run $(ARGS)

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick $(ARGS)

# Coverage-guided fuzzing of every decoder of outside bytes (fuzz/README.md); atheris installed on first use.
FUZZ_SECONDS ?= 30
fuzz: $(STAMP)
	@$(BIN)/python -c 'import atheris' 2>/dev/null || $(BIN)/python -m pip install --quiet atheris
	$(BIN)/python -m fuzz.run --seconds $(FUZZ_SECONDS) $(ARGS)

protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

# Fails when the committed generated code differs from what the .proto files produce.
protos-check: protos
	@git diff --exit-code --stat -- bridge/api/gen bridge/uplink/proto || (echo "generated protobuf code is stale: run 'make protos' and commit" && exit 1)
	@test -z "$$(git status --porcelain -- bridge/api/gen bridge/uplink/proto)" || (echo "untracked generated files: run 'make protos' and commit" && exit 1)

lint: $(STAMP)
	$(BIN)/buf lint
	$(BIN)/ruff check bridge drivers tests hil_tests examples bench scripts fuzz setup.py
	$(BIN)/ruff format --check bridge drivers tests hil_tests examples bench scripts fuzz setup.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
