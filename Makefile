# Compression Explorer: make demo | test | lab | checkpoint | clean
#
# Works on a fresh clone: the first target that needs the virtual environment creates it.
# Stamps inside $(VENV) make pip run again only when pyproject.toml changes.

TORCH ?= torch==2.13.0
PY ?= python3
VENV ?= .venv
# make test: pytest processes, one file each at a time (a module's fixtures run once); each
# process's torch/OpenMP uses one thread, so two processes share 2 cores without spinning.
TEST_WORKERS ?= 2

BIN := $(VENV)/bin
PYTHON := $(BIN)/python
STAMP_RUN := $(VENV)/.stamp-install
STAMP_TEST := $(VENV)/.stamp-test
CHROMIUM := /usr/bin/chromium
# What `make lint` type-checks: every floor of the package (plain mypy, not strict).
MYPY_PATHS ?= explorer

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-fast test-under-load test-deps chromium lint lab checkpoint llm-gpt \
	clean distclean

help:
	@echo "make demo        serve the dashboard (Voila) at http://127.0.0.1:8866/"
	@echo "make test        lint and run every test (installs test deps and Chromium if needed;"
	@echo "                 the Ray tests run in a private network namespace: needs root)"
	@echo "make test-fast   lint and run the tests not marked browser, slow or ray"
	@echo "make test-under-load  the browser tests beside two busy processes (a busy machine)"
	@echo "make lint        ruff, import-linter contracts (lint-imports), mypy on MYPY_PATHS"
	@echo "make lab         JupyterLab on notebooks/"
	@echo "make checkpoint  retrain the shipped checkpoint (assets/make_checkpoint.py)"
	@echo "make venv        just create/refresh $(VENV)"
	@echo "make clean       remove caches and test artifacts (distclean: also $(VENV))"

$(PYTHON):
	$(PY) -m venv $(VENV)

# The pinned torch goes in first: an unpinned "torch>=..." alone would pull a multi-GB CUDA
# build, while an already-installed torch that satisfies the range is kept.
$(STAMP_RUN): pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install --upgrade pip
	$(PYTHON) -m pip install '$(TORCH)'
	$(PYTHON) -m pip install '$(TORCH)' -e .
	touch $@

# The ray extra too: its tests run in every `make test` (in a private network namespace);
# and hf, for the hf:PATH tests (tiny transformers models built from configs).
$(STAMP_TEST): $(STAMP_RUN) pyproject.toml
	$(PYTHON) -m pip install '$(TORCH)' -e '.[test,ray,hf]'
	touch $@

venv: $(STAMP_RUN)

test-deps: $(STAMP_TEST) chromium

# Debian's Chromium for the browser tests (Playwright drives it; it downloads no browser).
chromium:
	@if [ -x $(CHROMIUM) ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "Installing Debian's chromium for the browser tests"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else \
		echo "NOTE: $(CHROMIUM) is missing and we are not root: browser tests will be skipped."; \
		echo "      Install it with: sudo apt-get install -y chromium"; \
	fi

demo: venv
	$(BIN)/explorer dashboard

lint: $(STAMP_TEST)
	$(BIN)/ruff check explorer tests
	$(BIN)/lint-imports
	$(BIN)/mypy $(MYPY_PATHS)

# Ray binds every interface, so its tests (-m ray) run apart, in a private network
# namespace (unshare --net --pid --fork --mount-proc, loopback up) that tests/ray_netns.py
# makes and watches from outside; where no namespace can be made it says why and skips them.
# PYTEST_ARGS (e.g. -x, -k NAME) go to both runs; "no tests collected" is then not a failure.
test: test-deps lint
	OMP_NUM_THREADS=1 $(PYTHON) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not ray" \
		$(PYTEST_ARGS) || [ $$? = 5 -a -n "$(PYTEST_ARGS)" ]
	$(PYTHON) tests/ray_netns.py $(PYTEST_ARGS)

test-fast: lint
	$(PYTHON) -m pytest -m "not browser and not slow and not ray"

# The browser tests beside two processes that keep a core each busy (issue 27: the suite
# must pass on a loaded machine; tests wait for states, never for fixed times). Not part
# of .ci/run. The busy processes end with the run, whatever its outcome.
test-under-load: test-deps
	@$(PYTHON) -c "while True: pass" & one=$$!; \
	$(PYTHON) -c "while True: pass" & two=$$!; \
	trap 'kill $$one $$two 2>/dev/null' EXIT INT TERM; \
	start=$$(date +%s); \
	$(PYTHON) -m pytest -m browser $(PYTEST_ARGS); status=$$?; \
	echo "test-under-load: exit $$status after $$(( $$(date +%s) - start )) s"; exit $$status

# Jupyter refuses to run as root without --allow-root (root is the norm in containers and CI).
lab: venv
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root)

checkpoint: venv
	$(PYTHON) assets/make_checkpoint.py

# the small BPE GPT of `explorer reproduce llm-pruning` (docs/llm-pruning.md): <= 10 minutes
llm-gpt: venv
	nice -n 10 $(PYTHON) scripts/train_small_gpt.py --out build/llm-gpt --minutes 9

clean:
	rm -rf build dist *.egg-info test-artifacts .pytest_cache .ruff_cache .mypy_cache \
		.import_linter_cache
	find explorer tests assets notebooks -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true

distclean: clean
	rm -rf $(VENV)
