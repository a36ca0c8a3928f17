# nonvon: two set-up commands, each works on a fresh machine from a clean clone.
#   make demo   every simulator on MNIST with a small budget (nonvon compare --quick)
#   make test   run the test suite
# Both create .venv and install everything they need on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_OUT ?= demo-results

.PHONY: demo test bench lint install data chromium clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e ".[dev]"
	@$(MAKE) --no-print-directory data
	@touch $(STAMP)

install: $(STAMP)

# Fashion-MNIST from Debian's package, where apt exists (optional: never fails the build).
data:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] && echo "" || (command -v sudo >/dev/null && echo "sudo -n") ); \
	  $$SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
	  || ($$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1) \
	  || echo "note: could not install Debian's dataset-fashion-mnist; fashion-mnist needs NONVON_DATA or a network"; \
	fi

# Headless Chromium, which a test uses to render report.html: Debian's package, installed when
# missing where apt-get exists and we are root (or have password-less sudo). Optional: never
# fails the build; without it that test skips and says why.
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "note: no chromium and no apt-get; the HTML render test will skip"; \
	elif [ "$$(id -u)" != 0 ] && ! sudo -n true >/dev/null 2>&1; then \
	  echo "note: no chromium, and installing it needs root; the HTML render test will skip"; \
	else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] && echo "" || echo "sudo -n" ); \
	  echo "installing Debian's chromium (headless HTML render test)"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
	  || ($$SUDO apt-get update -q >/dev/null 2>&1 \
	      && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1) \
	  || echo "note: could not install Debian's chromium; the HTML render test will skip"; \
	fi

demo: $(STAMP)
	$(BIN)/nonvon compare --task mnist --sim all --quick --out $(DEMO_OUT)

test: $(STAMP)
	@$(MAKE) --no-print-directory chromium
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n auto --dist loadfile

bench: $(STAMP)
	@for b in benchmarks/*.py; do [ -e "$$b" ] && $(BIN)/python $$b --quick; done; true

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .hypothesis
