# Two commands on a fresh Debian machine: `make test` and `make demo`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# exfat-fuse, exfatprogs: a real case-insensitive filesystem for the sharing tests.
SYSTEM_PACKAGES := rtorrent nginx systemd exfat-fuse exfatprogs
# Which rtorrent `make demo` runs: 0.9.8 (Debian's) or 0.16 (`make demo RTORRENT=0.16`).
RTORRENT ?= 0.9.8

.PHONY: test demo lint typecheck layers unit bench system-deps rtorrent-0.16 clean

# The integration tests run on rtorrent 0.9.8 and 0.16 (ids rt0.9.8, rt0.16).
test: system-deps rtorrent-0.16 $(STAMP) lint typecheck layers
	$(PY) -m pytest -q

demo: system-deps $(if $(filter 0.16,$(RTORRENT)),rtorrent-0.16) $(STAMP)
	RTORRENT=$(RTORRENT) $(PY) contrib/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check rtorrentd tests bench contrib
	$(VENV)/bin/ruff format --check rtorrentd tests bench contrib

# Strict on the oldest Python we support too (requires-python), and on the tests.
typecheck: $(STAMP)
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --python-version 3.10 rtorrentd

# The import contracts in pyproject.toml: layers one way, no I/O in the pure core.
layers: $(STAMP)
	$(VENV)/bin/lint-imports

bench: system-deps $(STAMP)
	for b in bench/*.py; do $(PY) $$b || exit 1; done

# Installs what is missing; quick when everything is there already.
system-deps:
	@./.ci/system-deps $(SYSTEM_PACKAGES)

# Debian sid's rtorrent 0.16, run from a private tree cached in ~/.cache/rtorrentd:
# fetched once (seconds), the system's apt configuration untouched.
rtorrent-0.16:
	@./.ci/rtorrent-0.16 >/dev/null

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
