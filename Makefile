# creditcert — `make demo` and `make test` set everything up on a fresh Debian machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# System packages later steps need: CJK fonts for the PDF, HarfBuzz subsetting (fast font
# embedding in WeasyPrint; hb-subset trims the report's faces to GB 2312 once per machine),
# poppler's pdfsig/pdftotext/pdffonts for checking real PDFs, zbar (a second QR decoder),
# Chromium for the service's browser tests (driven by Playwright, which cannot fetch its own),
# PostgreSQL's server for the tests of the shared registry (tests/pg_server.py starts its own).
SYSTEM_PACKAGES := fonts-noto-cjk libharfbuzz-subset0 libharfbuzz-bin poppler-utils zbar-tools chromium postgresql
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages demo serve test check bench lint format clean

setup: system-packages $(STAMP)

system-packages:
	@missing=""; \
	for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m creditcert.issue.fonts
	@touch $@

demo: setup
	bash docs/tour.sh

# The demo city's web service (after `make demo`) on http://127.0.0.1:8000 — the base URL its
# reports' QR codes point at; the demo sign-in takes any registered code (loopback only).
serve: setup
	@test -f out/demo/shenyang/creditcert.toml || { echo "no demo city yet: run make demo first"; exit 1; }
	$(BIN)/creditcert --home out/demo/shenyang serve --demo

# Files are spread over every core (module fixtures stay with their file); `pytest -n0` for one.
# Bytecode is cached even where PYTHONDONTWRITEBYTECODE is set: otherwise every worker rewrites the
# asserts of every test module again (about 4 s each) and every CLI subprocess compiles creditcert.
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -n auto
test: setup
	$(PYTEST)

# The inner loop while editing (about 25 s on 2 cores): everything but the
# `slow` tests (pyproject.toml: real servers, CLI subprocesses, fuzzers, cities and reports of
# their own). CI runs `make test`, which includes them.
check: setup
	$(PYTEST) -m "not slow"

# run.py: the city-scale table (benchmarks/README.md); then issue 10's scripts, each printing its
# own table with the floor measured in the same run.
bench: setup
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/verify_speed.py
	$(BIN)/python benchmarks/batch_speed.py
	$(BIN)/python benchmarks/service_load.py
	$(BIN)/python benchmarks/scale_out.py

lint: setup
	$(BIN)/ruff check creditcert tests benchmarks tools
	$(BIN)/ruff format --check creditcert tests benchmarks tools

format: setup
	$(BIN)/ruff format creditcert tests benchmarks tools
	$(BIN)/ruff check --fix creditcert tests benchmarks tools

clean:
	rm -rf $(VENV) out .pytest_cache
