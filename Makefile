# airlock's entry points. Every target first runs scripts/bootstrap, which installs what a
# fresh Debian 12 machine lacks (idempotent; about a second when nothing is missing).
#   make lab    the main job: environment, the built-in lab, check, deploy
#   make test   what CI runs: lint, pytest, every molecule scenario

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export AIRLOCK_HOME := $(CURDIR)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Scenarios in the order CI runs them (each makes and removes its own lab hosts).
SCENARIOS ?= $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))
LAB_ARGS ?= --masters 3 --workers 2

.PHONY: bootstrap lab lab-down test lint unit molecule bench help

help:
	@echo "make lab | make test | make lint | make unit | make molecule | make bench | make lab-down"

bootstrap:
	@scripts/bootstrap

lab: bootstrap
	airlock lab up $(LAB_ARGS)
	airlock check -i inventories/lab
	airlock deploy -i inventories/lab

lab-down: bootstrap
	airlock lab down

test: bootstrap
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory lint unit molecule; \
	echo "make test: everything passed in $$(( $$(date +%s) - start ))s"

lint: bootstrap
	yamllint --strict .
	ansible-lint
	ruff check .
	ruff format --check airlock tests benchmarks plugins

unit: bootstrap
	pytest

molecule: bootstrap
	@test -n "$(SCENARIOS)" || { echo "no molecule scenarios found"; exit 1; }
	@for s in $(SCENARIOS); do \
	  echo "== molecule test -s $$s"; start=$$(date +%s); \
	  molecule test -s $$s; \
	  echo "== molecule scenario $$s passed in $$(( $$(date +%s) - start ))s"; \
	done

# Self-contained benchmarks (each makes and removes its own lab). Two need preparation:
# vip_failover.py a converged `molecule converge -s loadbalancer`; bundle_bench.py Go and,
# the first time, about an hour of compiling.
bench: bootstrap
	@for b in benchmarks/lab_and_check.py benchmarks/etcd_converge.py; do echo "== $$b"; python $$b; done
