"""Pinning OS packages (a connected machine): `airlock bundle pin-packages`.

Modules: distros (the supported distributions: suites, mirrors, keyrings), aptroot (a
private apt that resolves without touching this machine's), keyring (signed-by keyrings
with pinned fingerprints), ospackages (resolve each distribution's list and write the
pinned file that airlock.bundle.manifest reads back).
"""
