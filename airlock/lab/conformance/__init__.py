"""Kubernetes conformance on the lab (`make conformance`).

- airlock.lab.conformance.build: e2e.test, ginkgo and the test images the `[Conformance]`
  specs use, made here from Go modules and Debian's archive (nothing here reaches
  registry.k8s.io), as OCI archives under the names `e2e.test --list-images` prints;
- airlock.lab.conformance.report: the JUnit report read back, every failure classified
  (tests/conformance/known.yml) and the summary printed.

tests/conformance runs them on a fresh lab.
"""
