"""Building a bundle: `airlock bundle build` and `airlock bundle verify`.

Modules: pipeline (manifest -> verified downloads -> one archive), download (parallel,
resumable, cached fetch), images (registry images pinned by digest, via skopeo), wheels
(airlock's own wheels), debrepo (the bundle's apt repositories), archive (write a bundle),
signing, verify (check one, offline).
"""
