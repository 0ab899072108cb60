# edgebench — README's commands. Everything installs into .venv from pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test bench fuzz lint leaderboard chromium toolchain

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "edgebench needs Python 3.11 (found %d.%d)" % sys.version_info[:2]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Debian's Chromium for the leaderboard's browser test (driven by Playwright; nothing is
# downloaded at run time). Installed with apt-get when missing.
chromium:
	@test -x /usr/bin/chromium || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

# Debian's Arm GNU toolchain (newlib, libstdc++) and QEMU for the emulated boards (the `qemu`
# runner cross-compiles TFLite Micro firmware and boots it in qemu-system-arm), and the host C
# compiler its instruction-class plugin is built with. Installed with apt-get when missing.
TOOLCHAIN_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib \
                      qemu-system-arm gcc
toolchain:
	@test -x /usr/bin/arm-none-eabi-g++ && test -x /usr/bin/qemu-system-arm \
	  && command -v cc >/dev/null \
	  && test -f /usr/lib/arm-none-eabi/newlib/libc.a \
	  && test -d /usr/include/newlib/c++ || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $(TOOLCHAIN_PACKAGES); }

run: setup            ## run the quickstart suite and print its leaderboard table
	$(BIN)/edgebench run suites/quickstart.yaml

# Two pytest-xdist workers (tests/xdist_groups.py deals whole modules, the longest first), then
# the real-time tests (virtual boards and monitors on the host clock) alone; both always run.
test: setup chromium toolchain  ## all tests, slow end-to-end ones included
	@$(BIN)/pytest -n 2 --dist loadgroup -m "not realtime"; parallel=$$?; \
	  $(BIN)/pytest -m realtime; alone=$$?; \
	  [ $$parallel = 0 ] && [ $$alone = 0 ]

bench: setup toolchain  ## benchmarks that print figures (harness overhead, cold/warm wall time)
	$(BIN)/python benchmarks/harness_overhead.py
	$(BIN)/python benchmarks/quickstart_wall.py
	$(BIN)/python benchmarks/layer_costs.py
	$(BIN)/python benchmarks/unlike_mlperf.py
	$(BIN)/python benchmarks/estimator_error.py
	$(BIN)/python benchmarks/leaderboard_load.py
	$(BIN)/python benchmarks/big_store.py
	$(BIN)/python benchmarks/emulated_boards.py
	$(BIN)/python benchmarks/layer_agreement.py
	$(BIN)/python benchmarks/plugin_slowdown.py --models kws ad
	$(BIN)/python benchmarks/cycle_model.py
	$(BIN)/python benchmarks/ray_executor.py
	$(BIN)/python benchmarks/timing_significance.py

leaderboard: setup    ## the Streamlit leaderboard over results/
	$(BIN)/edgebench leaderboard

fuzz: setup           ## judge the whole fuzz corpus of suite and device files (make test runs a sample)
	$(BIN)/python tests/fuzz_corpus.py

lint: setup
	$(BIN)/ruff check bench tests benchmarks leaderboard
