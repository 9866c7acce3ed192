"""The table of registry kinds: one line per kind, used both to validate ``imagectl.toml`` and to open a registry.

Adding a kind (Google Artifact Registry, Harbor with its own API, …) is one module with a class implementing
registries/_base.py's ``Registry`` and one line here naming it and its settings dataclass (settings.py says how a
settings dataclass is read from the ``[registries.NAME]`` table). Nothing outside registries/ looks at the kind:
callers ask a registry what it can guarantee (``Registry.capabilities``).
"""

from __future__ import annotations

from dataclasses import dataclass

from imagectl.settings import setting


@dataclass(frozen=True, kw_only=True)
class HttpSettings:
    insecure: bool = setting(False)  # plain HTTP (a registry on loopback); never for a real registry


@dataclass(frozen=True, kw_only=True)
class EcrSettings(HttpSettings):
    region: str = setting(required=True, what="an AWS region such as eu-west-1")


@dataclass(frozen=True)
class Kind:
    name: str
    module: str  # imported only when a registry of this kind is opened (keeps boto3 out of --help)
    cls: str
    settings: type = HttpSettings  # its keys in [registries.NAME], besides kind, host and retention


KINDS: dict[str, Kind] = {
    "ecr": Kind("ecr", "imagectl.registries.ecr", "EcrRegistry", EcrSettings),
    "oci": Kind("oci", "imagectl.registries.oci", "OciRegistry", HttpSettings),
}
