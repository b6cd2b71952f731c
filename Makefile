# slm.edge: one entry point for setup, the main job and every test tier.
#   make test        set everything up and run all tiers (what .ci/run calls)
#   make quickstart  the main job on a local nspawn host (prints a chat completion)
#   make lint | sanity | unit | integration | molecule | build-test   one tier each
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= $(CURDIR)/.venv
BIN := $(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR ?= false
export PY_COLORS ?= 0
export ANSIBLE_NOCOLOR ?= true
TIER := $(PYTHON) $(CURDIR)/tests/tools/tier.py
SCENARIOS ?= $(shell $(PYTHON) $(CURDIR)/tests/tools/scenarios.py)
HOST_PACKAGES := debootstrap systemd-container ccache xfsprogs e2fsprogs util-linux rsync git curl gnupg dpkg-dev

.PHONY: help test setup host-deps venv lint sanity unit integration molecule build-test changelog quickstart local-host local-host-rm clean lock

help:
	@sed -n '2,5p' Makefile

## ---- setup -------------------------------------------------------------
setup: host-deps venv

host-deps:
	@missing=""; for p in $(HOST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing host packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements/test.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements/test.txt
	touch $@

lock:
	$(PYTHON) -m venv /tmp/slm-lock && /tmp/slm-lock/bin/pip install -q -r requirements/test.in
	/tmp/slm-lock/bin/pip freeze | grep -v -E '^(pip|setuptools|wheel)==' > requirements/test.txt

## ---- the main job ------------------------------------------------------
quickstart: setup
	$(TIER) run quickstart -- $(BIN)/python tests/tools/quickstart.py

local-host: setup
	$(BIN)/python tests/harness/nspawn.py up slm-local --disk data:4G --inventory inventories/local/hosts.yml

local-host-rm:
	$(PYTHON) tests/harness/nspawn.py destroy slm-local

## ---- test tiers --------------------------------------------------------
# Every tier runs, even after a failure; SLM_TEST_JOBS tiers at a time (tests/tools/plan.py).
test: setup
	@rm -rf .cache/tiers.json .cache/tiers
	@rc=0; $(TIER) plan || rc=$$?; \
	$(BIN)/python -c 'import collections, yaml; import glob; rows = [r for f in ["tests/reliability/matrix.yml"] + sorted(glob.glob("tests/reliability/matrix.d/*.yml")) for r in (yaml.safe_load(open(f)) or [])]; \
	  c = collections.Counter(r["expect"] for r in rows); \
	  print("reliability matrix: %d rows (%s), every row automated" % (len(rows), ", ".join("%s %d" % kv for kv in sorted(c.items()))))'; \
	exit $$rc


lint:
	$(TIER) run yamllint -- yamllint -s .
	$(TIER) run ruff -- ruff check .
	$(TIER) run ruff-format -- ruff format --check .
	$(TIER) run ansible-lint -- ansible-lint --profile production
	$(TIER) run syntax-check -- $(BIN)/python tests/tools/syntax_check.py

sanity:
	$(TIER) run sanity -- $(BIN)/python tests/tools/sanity.py

unit:
	$(TIER) run unit -- $(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

build-test:
	$(TIER) run build-test -- $(BIN)/python -m pytest -q -p no:cacheprovider tests/integration/test_galaxy_build.py

integration:
	$(TIER) run integration -- $(BIN)/python -m pytest -q -p no:cacheprovider tests/integration \
	  --deselect tests/integration/test_galaxy_build.py

molecule:
	@for s in $(SCENARIOS); do \
	  $(TIER) run "molecule:$$s" -- flock /var/lock/slm-molecule-$$s.lock molecule test -s $$s || exit 1; \
	done

changelog:
	antsibull-changelog release --refresh || antsibull-changelog generate

clean:
	rm -rf .cache tests/output /tmp/slm-edge-build
