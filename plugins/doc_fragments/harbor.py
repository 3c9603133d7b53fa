"""Documentation shared by the harbor_* modules: how they reach Harbor (module_utils.harbor's
CONNECTION_ARGUMENT_SPEC is the code side of the same options)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Harbor's address, V(https://NAME) or V(https://NAME:PORT), without a path (the API
        is under C(/api/v2.0)). Only C(https) is accepted.
      - The host must be named by Harbor's certificate (a DNS or IP SAN), since the name
        is always verified.
    type: str
    required: true
  ca_cert:
    description:
      - PEM file of the CA that signed Harbor's certificate. Only this CA is trusted
        (not the system's), and there is no option to skip verification.
    type: path
    required: true
  username:
    description: Harbor user the module acts as; a system administrator.
    type: str
    default: admin
  password:
    description: That user's password (never logged).
    type: str
    required: true
  timeout:
    description: Seconds one HTTP request may take.
    type: int
    default: 30
"""
