# Two commands set up everything on a fresh machine: `make demo` and `make test`.
# Both create the virtualenv and install what is missing (Debian packages included).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := keepalived iproute2 procps psmisc tcpdump tshark nftables python3-nftables curl prometheus

.PHONY: all setup demo test lint typecheck unit bench chaos clean

all: test

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: $(STAMP)
	$(BIN)/python contrib/demo.py

lint: $(STAMP)
	$(BIN)/ruff check conf haparent watchdog vrrp_child checker_child labkit tests bench contrib
	$(BIN)/ruff format --check --quiet conf haparent watchdog vrrp_child checker_child labkit tests bench contrib || \
		{ echo "run: $(BIN)/ruff format ."; exit 1; }

typecheck: $(STAMP)
	$(BIN)/mypy

# Two test processes, a test file each at a time (module fixtures stay in one process): the lab
# tests mostly wait on VRRP timers, so the suite takes about half the time on two cores.
unit: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/parse_bench.py
	$(BIN)/python bench/vrrp_failover.py
	$(BIN)/python bench/vrrp_failover.py --instances 1000 --interfaces 4 --rounds 1
	$(BIN)/python bench/vrrp_failover.py --instances 1020 --interfaces 4 --vrrp-version 3 --advert-int 0.1 --rounds 1
	$(BIN)/python bench/advert_burst.py --instances 1000 --interfaces 4 --seconds 20
	$(BIN)/python -m bench.checker_bench
	$(BIN)/python -m bench.metrics_bench

# Random faults on two pykeepalived nodes (keepalived 2.2.7 beside them as the reference) for
# PYK_CHAOS_SECONDS (default 180); PYK_CHAOS_SEED repeats a run. See docs/daemon.md, "Chaos test".
chaos: $(STAMP)
	PYK_CHAOS_SECONDS=$${PYK_CHAOS_SECONDS:-180} $(BIN)/python -m tests.lab.chaos

# Man pages generated from the argparse parsers and the configuration keyword tables
# (haparent/manpages.py): pykeepalived(8), pykeepalivedctl(8), pygenhash(1), pykeepalived.conf(5).
.PHONY: man
man: $(STAMP)
	$(BIN)/python -m haparent.manpages build/man

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis

# A Debian package of the working tree, built with dpkg-deb (contrib/debian/README.md), and
# its test: installed, run, reloaded and purged in the systemd container (slow, not in `test`).
.PHONY: deb deb-test
deb: $(STAMP)
	contrib/debian/build-deb.sh $(BIN)/python dist

deb-test: deb
	PYKEEPALIVED_DEB=1 $(BIN)/python -m pytest -q tests/systemd/test_deb.py
