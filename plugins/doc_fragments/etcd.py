"""Documentation shared by the etcd modules: how they connect (module_utils.etcd's
CONNECTION_ARGUMENT_SPEC is the code side of the same options)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  ca_cert:
    description: CA certificate that signed the members' server certificates.
    type: path
  client_cert:
    description: Client certificate, when the cluster requires client certificates.
    type: path
  client_key:
    description: Key of O(client_cert).
    type: path
  dial_timeout:
    description: Seconds to wait for a connection to an endpoint.
    type: int
    default: 5
  command_timeout:
    description: Seconds one etcdctl request may take.
    type: int
    default: 10
"""
