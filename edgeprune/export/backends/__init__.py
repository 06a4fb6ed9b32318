"""Compile backends: each turns the dense graph and the per-layer format choice into the files
of an artifact (:mod:`edgeprune.export.backends.base` has the interface)."""

from __future__ import annotations

from edgeprune.errors import UserError
from edgeprune.export.backends.base import Backend
from edgeprune.plugins import load_reference

# name -> "module:class"; the name is what the manifest records and the runtime dispatches on.
BACKENDS = {"onnxruntime": "edgeprune.export.backends.onnxruntime.backend:OrtBackend",
            "tvm": "edgeprune.export.backends.tvm.backend:TvmBackend"}
DEFAULT_BACKEND = "onnxruntime"


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise UserError(f"unknown backend '{name}'; available: {', '.join(BACKENDS)}")
    backend: Backend = load_reference(BACKENDS[name])()
    return backend
