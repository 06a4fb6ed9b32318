"""Where the shipped reference weights live, and how a state dict is saved and loaded safely.

A safetensors file is checked before any tensor is read: :func:`read_header` parses the header
itself (8-byte little-endian length, then JSON naming each tensor's dtype, shape and byte range)
and checks every declared size against the file's real size, so a file that claims more than it
holds is refused without allocating what it claims.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from edgeprune.contracts.base import NotJson, load_json
from edgeprune.errors import UserError, named, one_line, show
from edgeprune.fsio import atomic_path

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "models" / "weights"

MAX_HEADER = 100_000_000  # bytes of JSON header, as safetensors itself allows
MAX_DIMS = 8
# safetensors dtype -> bytes per element (the dtypes torch reads; sub-byte ones are refused)
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}  # fmt: skip
FLOAT_DTYPES = frozenset({"F8_E5M2", "F8_E4M3", "F16", "BF16", "F32", "F64"})


class HeaderError(Exception):
    """A safetensors header that is malformed or claims more than the file holds (the message
    says what, without the file name: the caller names the file in its own words)."""


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    begin: int  # byte range in the data section (after the header)
    end: int


@dataclasses.dataclass(frozen=True)
class Header:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    data_bytes: int  # the size of the data section, which the tensors tile exactly


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise HeaderError(f"the header names {named(k)} twice")
        out[k] = v
    return out


def _tensor_info(name: str, entry: object) -> TensorInfo:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise HeaderError(f"tensor {named(name)} is not an object of dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
        raise HeaderError(f"tensor {named(name)} has an unsupported dtype {show(dtype)}")
    if (not isinstance(shape, list) or len(shape) > MAX_DIMS
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):  # fmt: skip
        raise HeaderError(f"tensor {named(name)} has an invalid shape {show(shape)}")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]):  # fmt: skip
        raise HeaderError(f"tensor {named(name)} has invalid data_offsets {show(offsets)}")
    if math.prod(shape) * DTYPE_BYTES[dtype] != offsets[1] - offsets[0]:
        raise HeaderError(f"tensor {named(name)}: shape {show(shape)} of {dtype} does not match its "
                          f"{offsets[1] - offsets[0]} bytes")  # fmt: skip
    return TensorInfo(dtype, tuple(shape), offsets[0], offsets[1])


def read_header(path: Path) -> Header:
    """Parse and check a safetensors file's header without reading any tensor: the header's
    length and every tensor's byte range must lie within the file, the ranges must tile the
    data section exactly (no gaps, no overlaps), and each range must be its shape times its
    dtype's size. Raises :class:`HeaderError` or ``OSError``."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise HeaderError(f"{size} bytes is too short for a safetensors header")
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER:
            raise HeaderError(f"the header claims {length} bytes (at most {MAX_HEADER} are read)")
        if 8 + length > size:
            raise HeaderError(f"the header claims {length} bytes but the file has {size - 8} after its length")
        raw = fh.read(length)
    try:
        doc = load_json(raw, object_pairs_hook=_no_duplicates)
    except NotJson as exc:
        raise HeaderError(f"the header is {exc}") from None
    if not isinstance(doc, dict):
        raise HeaderError("the header is not a JSON object")
    metadata = doc.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise HeaderError("the header's __metadata__ is not an object of strings")
    tensors = {name: _tensor_info(name, entry) for name, entry in doc.items()}
    position = 0
    for name, info in sorted(tensors.items(), key=lambda kv: (kv[1].begin, kv[1].end)):
        if info.begin != position:
            raise HeaderError(f"tensor {named(name)} starts at byte {info.begin}, not {position} where the one "
                              "before it ends")  # fmt: skip
        position = info.end
    data = size - 8 - length
    if position != data:
        raise HeaderError(f"the tensors declare {position} bytes of data but the file holds {data}")
    return Header(tensors, metadata, data)


def check_memory(path: Path, header: Header) -> None:
    """Refuse a file whose tensors could not fit in this machine's memory, before reading them."""
    memory = physical_memory()
    if memory is not None and header.data_bytes > memory:
        raise UserError(f"{path}: its tensors take {header.data_bytes / 2**30:.1f} GiB, more than this machine's "
                        f"{memory / 2**30:.1f} GiB of memory")  # fmt: skip


def physical_memory() -> int | None:
    """Bytes of memory this machine has, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def shipped_weights(name: str) -> Path:
    """Path of a reference model's shipped half-precision weights."""
    return WEIGHTS_DIR / f"{name}.safetensors"


def save_state(model: nn.Module, path: str | Path, half: bool = True) -> None:
    """Save ``model``'s state dict as safetensors (floating tensors in fp16 if ``half``)."""
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().contiguous().cpu()
        state[k] = v.half() if half and v.is_floating_point() else v
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors state dict; a missing or corrupt file is a :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    try:
        header = read_header(path)
    except (HeaderError, OSError) as exc:
        raise UserError(f"weights file {path} is not a valid safetensors file ({one_line(exc)})") from None
    check_memory(path, header)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise UserError(f"weights file {path} is not a valid safetensors file ({one_line(exc)})") from None


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Load ``state`` into ``model`` (cast to the model's dtypes); mismatches are user errors."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise UserError(
            f"{source} does not fit the model: {len(missing)} missing tensors "
            f"(e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        )
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise UserError(f"{source}: tensor {k} has shape {tuple(v.shape)}, model expects {tuple(own[k].shape)}")
        if own[k].is_floating_point() and not v.is_floating_point():
            raise UserError(f"{source}: tensor {k} has dtype {v.dtype}, model expects {own[k].dtype}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return model


def state_hash(state: dict[str, torch.Tensor]) -> str:
    """sha256 of a state dict's names, shapes, dtypes and bytes, in name order."""
    h = hashlib.sha256()
    for k in sorted(state):
        v = state[k].detach().contiguous().cpu()
        h.update(f"{k}|{tuple(v.shape)}|{v.dtype}|".encode())
        h.update(v.reshape(-1).view(torch.uint8).numpy().tobytes() if v.numel() else b"")
    return h.hexdigest()
