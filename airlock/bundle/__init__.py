"""The offline bundle: a pinned manifest, verified downloads, one archive, offline verification.

Modules: manifest (load_manifest), download (parallel, resumable, cached fetch), archive
(write a bundle), verify (check one), signing, build (the pipeline), lab (the lab
profile's local artifacts), wheels (airlock's own wheels), distros/aptroot/keyring/ospackages
(OS packages resolved and pinned per distribution), debrepo (OS package
repositories), cli (`airlock bundle ...`).
"""
