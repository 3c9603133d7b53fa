# airlock's entry points. Every target first runs scripts/bootstrap, which installs what a
# fresh Debian 12 machine lacks (idempotent; about a second when nothing is missing).
#   make lab    the main job: environment, lab bundle, the built-in lab, check, deploy
#   make test   what CI runs: lint, pytest, every molecule scenario
#   make e2e    the whole cluster on an --internal lab from the lab bundle (see README)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export AIRLOCK_HOME := $(CURDIR)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Scenarios in the order CI runs them (each makes and removes its own lab hosts).
SCENARIOS ?= $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))
LAB_ARGS ?= --masters 3 --workers 2 --monitoring w1,w2 --registry m3 --ceph m1,m2,m3

.PHONY: bootstrap lab lab-down test lint unit molecule e2e e2e-faults e2e-upgrade e2e-day2 e2e-monitoring e2e-ceph e2e-mirror e2e-ee conformance collection bench help

help:
	@echo "make lab | make test | make e2e | make e2e-faults | make e2e-upgrade | make e2e-day2 | make e2e-monitoring | make e2e-ceph | make e2e-mirror | make e2e-ee | make conformance | make collection | make lint | make unit | make molecule | make bench | make lab-down"

bootstrap:
	@scripts/bootstrap

lab: bootstrap
	@test -d .airlock/cache/lab/bin || echo "make lab: the first lab bundle build compiles Kubernetes, etcd, containerd, the monitoring stack and more from their Go modules: 35-50 minutes on a 2-core machine (later builds reuse them: about a minute); then the hosts and the deploy, 10-15 minutes"
	airlock bundle build --profile lab
	airlock lab up $(LAB_ARGS)
	airlock check -i inventories/lab
	airlock deploy -i inventories/lab
	@echo
	@echo "The cluster is up. From this directory:"
	@echo "  .venv/bin/airlock status -i inventories/lab           # nodes, etcd, the VIP, certificates, services"
	@echo "  .venv/bin/airlock kubectl -i inventories/lab get pods -A   # the bundle's kubectl, as admin"
	@echo "  eval \"\$$(.venv/bin/airlock kubectl -i inventories/lab --path)\"   # KUBECONFIG and kubectl in this shell"
	@echo "  .venv/bin/airlock monitoring open -i inventories/lab  # Prometheus and Alertmanager"
	@echo "  make lab-down                                         # remove the lab"

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

# Builds (or reuses) the lab bundle, starts an --internal 3+2 lab, deploys, asserts the
# cluster works and a re-deploy changes nothing, then stops m1 and checks the API again;
# the registry on m3: trusted by every node, 401 without credentials, pods pulling a pushed
# image with the pull secret, x509 once a node loses the CA until the next deploy.
e2e: bootstrap
	@start=$$(date +%s); \
	pytest tests/e2e -v -s -p no:cacheprovider; \
	echo "make e2e: passed in $$(( $$(date +%s) - start ))s"

# Kills `airlock deploy` (the whole controller side, SIGKILL) during the bundle fetch, etcd's
# start, kubeadm init, a control-plane join and a worker join on a fresh --internal lab,
# re-running it each time; then the cluster must be whole and a further deploy change nothing.
e2e-faults: bootstrap
	@start=$$(date +%s); \
	pytest tests/faults -v -s -p no:cacheprovider; \
	echo "make e2e-faults: passed in $$(( $$(date +%s) - start ))s"

# Builds (or reuses) the lab bundles of 1.36.3 and 1.37.2, installs 1.36.3 on a fresh
# --internal 3+2 lab with a workload under a client and an API probe, prints and checks
# `airlock upgrade --plan`, kills the upgrade after the first control plane, resumes it, and
# checks every node at 1.37.2, the failed requests and probes, and that a re-run changes
# nothing. The first run compiles 1.36.3 too (about an hour on 2 cores).
e2e-upgrade: bootstrap
	@start=$$(date +%s); \
	pytest tests/upgrade -v -s -p no:cacheprovider; \
	echo "make e2e-upgrade: passed in $$(( $$(date +%s) - start ))s"

# Day-2 operations on a fresh --internal 3+2 lab deployed without w2: `node add w2` with
# 100 phantom workers in the inventory, `certs status`, `certs renew` of a certificate made
# to expire in 5 days and `--all` (API probed through the VIP meanwhile), `backup`, etcd
# wiped on every member, `restore`, `reset` of w2 and `node add` of it again.
e2e-day2: bootstrap
	@start=$$(date +%s); \
	pytest tests/day2 -v -s -p no:cacheprovider; \
	echo "make e2e-day2: passed in $$(( $$(date +%s) - start ))s"

# The upstream Kubernetes conformance suite (every [Conformance] spec of the lab bundle's
# release) on a fresh --internal 1+2 lab: e2e.test, ginkgo and the test images built here
# (Go modules, Debian's archive, busybox from source) and served by the registry's mirror; failures
# classified by tests/conformance/known.yml, the summary and the JUnit report in
# .airlock/artifacts/conformance/. Hours on 2 cores; AIRLOCK_CONFORMANCE_FOCUS narrows it.
conformance: bootstrap
	@start=$$(date +%s); \
	pytest tests/conformance -v -s -p no:cacheprovider; \
	echo "make conformance: passed in $$(( $$(date +%s) - start ))s"

# The execution environment for AWX: the image built offline from the lab's Debian image
# and the bundle's wheels, and `airlock check`'s per-host play run inside it by
# ansible-runner against two lab hosts (tests/ee; docs/awx.md). A few minutes.
e2e-ee: bootstrap
	@start=$$(date +%s); \
	pytest tests/ee -v -s -p no:cacheprovider; \
	echo "make e2e-ee: passed in $$(( $$(date +%s) - start ))s"

# The collection airlock.cluster as .airlock/dist/airlock-cluster-VERSION.tar.gz.
collection: bootstrap
	airlock collection build

molecule: bootstrap
	@test -n "$(SCENARIOS)" || { echo "no molecule scenarios found"; exit 1; }
	@for s in $(SCENARIOS); do \
	  echo "== molecule test -s $$s"; start=$$(date +%s); \
	  molecule test -s $$s; \
	  echo "== molecule scenario $$s passed in $$(( $$(date +%s) - start ))s"; \
	done

# The monitoring stack on a fresh --internal 3+2 lab (monitoring on w1, w2): every target
# up on both Prometheus, etcd member-down and a 5-day certificate to a webhook receiver and
# resolved, the VIP moving in the metrics, screenshots of the UI by headless Chromium
# (bootstrap --browser installs it) in .airlock/artifacts/e2e-monitoring/.
e2e-monitoring:
	@scripts/bootstrap --browser
	@start=$$(date +%s); \
	pytest tests/monitoring -v -s -p no:cacheprovider; \
	echo "make e2e-monitoring: passed in $$(( $$(date +%s) - start ))s"

# Ceph on the workers of a fresh --internal 1+3 lab (`lab up --ceph w1,w2,w3`): HEALTH_OK with
# 3 monitors and 3 OSDs, the client's exact caps, RBD operations from m1 (no Ceph daemon
# there) with the client's key, w3 stopped and started (HEALTH_WARN, data read, HEALTH_OK),
# the snapshot CRDs, controller and classes for real, ceph-csi's objects by server dry run,
# a second deploy changing nothing.
e2e-ceph: bootstrap
	@start=$$(date +%s); \
	pytest tests/storage -v -s -p no:cacheprovider; \
	echo "make e2e-ceph: passed in $$(( $$(date +%s) - start ))s"

# The nodes of a fresh --internal 1+2 lab pull the bundle's images from the registry's
# read-only mirror on w2 (`lab up --registry w2 --image-source registry`): cluster up, no
# archive or import on other nodes, the bundle's digests, a pod pulling on demand without
# credentials, the mirror anonymous and read-only, a second deploy changing nothing.
e2e-mirror: bootstrap
	@start=$$(date +%s); \
	pytest tests/mirror -v -s -p no:cacheprovider; \
	echo "make e2e-mirror: passed in $$(( $$(date +%s) - start ))s"

# Self-contained benchmarks (each makes and removes its own lab). Two need preparation:
# vip_failover.py a converged `molecule converge -s loadbalancer`; bundle_bench.py Go and,
# the first time, about an hour of compiling.
bench: bootstrap
	@for b in benchmarks/lab_and_check.py benchmarks/etcd_converge.py; do echo "== $$b"; python $$b; done
