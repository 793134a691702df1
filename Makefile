# From a fresh clone, two commands:
#   make demo    Label Studio + the backend + a coding project on this machine (no Docker)
#   make test    the whole test suite (the README's test command, after setting up)
# Both set up what they need on first use: .venv with the CPU build of torch and this package
# (with its test extra), and .ls-venv with Label Studio for the demo and the end-to-end tests.
#
# TORCH is the CPU build of torch; TORCH_INDEX where it comes from (PyTorch's CPU index). Offline,
# or with a local wheel folder in your pip configuration: make demo TORCH_INDEX=
# On macOS (whose PyPI wheels are CPU builds): make demo TORCH=torch==2.13.0 TORCH_INDEX=
PYTHON ?= python3
TORCH ?= torch==2.13.0+cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
LABEL_STUDIO ?= label-studio==1.23.2
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: demo test setup lint
demo: .venv/.installed .ls-venv/.installed
	.venv/bin/coding-backend demo $(DEMO_ARGS)

# The suite in two streams side by side: one stream left a third of two cores idle (Docker's image
# builds, pip and Label Studio's migrations each keep one core busy; docs/benchmarks.md, "Test suite
# time per folder"). The compose stack, the fault campaign, the research harness and the worker's
# jobs run beside the rest (the e2e stories); the side stream's report follows the main one's, and
# both must pass. PYTEST_ARGS (options, such as -x) go to both; `python -m pytest` runs everything
# in one stream.
SIDE_TESTS = tests/deploy tests/faults tests/research tests/worker
test: setup
	@mkdir -p build
	.venv/bin/python -m pytest $(SIDE_TESTS) $(PYTEST_ARGS) > build/side-tests.log 2>&1 & side=$$!; \
	.venv/bin/python -m pytest $(addprefix --ignore=,$(SIDE_TESTS)) $(PYTEST_ARGS); main=$$?; \
	wait $$side; beside=$$?; \
	echo "===== $(SIDE_TESTS), run beside the rest (build/side-tests.log) ====="; \
	cat build/side-tests.log; \
	[ $$main -eq 0 ] && [ $$beside -eq 0 ]

setup: .venv/.installed .ls-venv/.installed

lint: .venv/.installed
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

.venv/.installed: pyproject.toml
	$(PYTHON) -m venv .venv
	.venv/bin/pip install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	.venv/bin/pip install --quiet -e ".[test]"
	touch $@

.ls-venv/.installed:
	$(PYTHON) -m venv .ls-venv
	.ls-venv/bin/pip install --quiet "$(LABEL_STUDIO)"
	touch $@
