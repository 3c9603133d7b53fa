"""The offline bundle: a pinned manifest, verified downloads, one archive, offline verification.

Three sub-packages, imported in one direction (build and pin use manifest, never the
other way round, and never each other):

- manifest: the read side every `airlock check` needs: the format, its rules,
  load_manifest (with the .debs os_packages pinned).
- pin: OS packages resolved and pinned per distribution and architecture on a connected
  machine (distros, aptroot, keyring, ospackages: `airlock bundle pin-packages`).
- build: the bundle itself (pipeline: `airlock bundle build`; download, images, wheels,
  debrepo, archive, signing, verify).

The lab profile's own artifacts (Go builds, OCI images made here) live in
airlock.lab.bundle; the command line is airlock.cli.bundle.
"""
