"""Build (or reuse) the monitoring stack as the lab bundle does; print {artifact: path}.

molecule/monitoring/prepare.yml runs this on the controller: Prometheus (with its web UI),
Alertmanager, node_exporter and blackbox_exporter from their Go modules into the lab cache,
packed like upstream's release archives, and the upstream rules rendered from their mixins.
"""

from __future__ import annotations

import json
import sys

from airlock.bundle.build import mixins
from airlock.lab.bundle import gobuild, profile
from airlock.paths import state_dir


def main() -> int:
    cache = state_dir() / "cache" / "lab"
    gobuild.require_go()
    wanted = {
        "prometheus",
        "promtool",
        "alertmanager",
        "amtool",
        "node_exporter",
        "blackbox_exporter",
    }
    binaries = {
        t.name: gobuild.build(t, "amd64", cache)
        for t in profile.monitoring_targets()
        if t.name in wanted
    }
    packed = profile._pack_archives(cache, "amd64", profile.release(None), binaries)
    out = {name: str(path) for name, (_, path) in packed.items()}
    out[mixins.ARTIFACT] = str(
        mixins.render_bundle_file(state_dir() / "cache" / "bundle" / "mixins")
    )
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
