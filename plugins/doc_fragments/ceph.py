"""Documentation shared by the ceph modules: how they connect (module_utils.ceph_run's
CONNECTION_ARGUMENT_SPEC is the code side of the same options)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  cluster:
    description:
      - Name of the Ceph cluster (C(--cluster)); it picks the default O(conf) and the
        keyring file names Ceph looks for.
    type: str
    default: ceph
  conf:
    description:
      - The cluster's configuration file (it names the monitors).
      - Defaults to C(/etc/ceph/{cluster}.conf).
    type: path
  user:
    description: The Ceph user the module acts as (C(--name)), for example V(client.admin).
    type: str
    default: client.admin
  keyring:
    description:
      - Keyring file of O(user).
      - When unset, Ceph's own lookup applies (the conf's C(keyring) setting, else
        C(/etc/ceph/{cluster}.{user}.keyring) and its other default places).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the monitors; after that the module fails naming O(conf)
        and the monitors it lists.
    type: int
    default: 10
notes:
  - Runs the C(ceph) and C(rbd) programs of ceph-common (found on E(PATH)) with
    C(LC_ALL=C), never through a shell, and reads their C(--format json) output.
requirements:
  - ceph-common (the C(ceph) and C(rbd) CLIs) on the target host
"""
