"""airlock: install production Kubernetes into air-gapped datacenters from one offline bundle."""

__version__ = "0.1.0"
