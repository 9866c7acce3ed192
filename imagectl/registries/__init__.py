"""Registry kinds behind one interface (_base.py); ``open_registry`` opens the kind named in the config.

The kinds are listed in kinds.py; this package imports a kind's module only when it is opened, so that
``imagectl --help`` never loads boto3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from imagectl.registries.kinds import KINDS

if TYPE_CHECKING:
    from imagectl.credentials import Credentials
    from imagectl.registries._base import Registry
    from imagectl.settings import RegistryConfig, Timeouts


def open_registry(config: RegistryConfig, credentials: Credentials, timeouts: Timeouts | None = None) -> Registry:
    """The registry ``config`` names, with its login from ``credentials`` (none for ECR: its token comes from AWS)."""
    kind = KINDS[config.kind]  # config.py accepts only kinds listed there
    cls = getattr(importlib.import_module(kind.module), kind.cls)
    return cls(config, login=credentials.registry(config.name), timeouts=timeouts)
