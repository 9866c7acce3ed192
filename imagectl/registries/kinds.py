"""The table of registry kinds: one line per kind, used both to validate ``imagectl.toml`` and to open a registry.

Adding a kind (Google Artifact Registry, Harbor with its own API, …) is one module under registries/ with a
class implementing registries/_base.py's ``Registry``, and one line here. Nothing outside registries/ looks at
the kind: callers ask a registry what it can guarantee (``Registry.capabilities``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str
    module: str  # imported only when a registry of this kind is opened (keeps boto3 out of --help)
    cls: str
    required: tuple[str, ...] = ()  # keys [registries.X] must set for this kind
    allowed: tuple[str, ...] = ()  # further keys it accepts (besides kind and host)


KINDS: dict[str, Kind] = {
    "ecr": Kind("ecr", "imagectl.registries.ecr", "EcrRegistry", required=("region",), allowed=("insecure", "retention", "lifecycle")),
    "oci": Kind("oci", "imagectl.registries.oci", "OciRegistry", allowed=("insecure", "retention")),
}
