"""Registry kinds behind one interface (see _base.py); ``open_registry`` picks the backend by ``kind``."""

from __future__ import annotations

from imagectl.config import RegistryConfig
from imagectl.registries._base import Manifest, Registry, RemoteImage, RepositoryChange

__all__ = ["Manifest", "RemoteImage", "RepositoryChange", "Registry", "open_registry"]


def open_registry(config: RegistryConfig) -> Registry:
    if config.kind == "ecr":
        from imagectl.registries.ecr import EcrRegistry

        return EcrRegistry(config)
    from imagectl.registries.oci import OciRegistry

    return OciRegistry(config)
