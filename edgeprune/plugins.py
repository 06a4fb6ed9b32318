"""Plug-ins by name: the registries of methods, compile backends and runners hold
``"package.module:attribute"`` strings, so listing what exists imports nothing, and the code is
imported only when it is used (a board never imports the compiler it does not have)."""

from __future__ import annotations

import importlib
from typing import Any


def load_reference(ref: str) -> Any:  # noqa: ANN401 - whatever the reference names
    """The attribute ``ref`` (``"package.module:attribute"``) names, imported on demand."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)
