"""The pruned checkpoint (``.ept``): one safetensors file holding the extracted model's weights
(``w/<name>``), the keep-masks (``m/<name>``, uint8), the pruned model's ONNX graph (``g/onnx``,
the bytes as uint8; see :mod:`edgeprune.graph.carried`), a few calibration inputs
(``x/inputs``, float32) and JSON metadata (a :class:`~edgeprune.contracts.checkpoint.CheckpointMeta`):
the workload and model it came from, the tasks, the method and its settings, the source model's
hash and the edgeprune version. Loading parses tensors and JSON only; nothing in the file is
executed, and nothing it names is imported (:func:`rebuild_model` takes a built-in workload by
name, any other only from the caller).

Usage::

    save_checkpoint("out.ept", model, masks, meta, carried)   # meta: a CheckpointMeta
    ckpt = load_checkpoint("out.ept")                # CheckpointFile(state, masks, meta, graph, inputs)
    model = rebuild_model(ckpt)                      # extracted model with the pruned weights
    model = masked_model(ckpt)                       # pruned weights zeroed
    model = masked_model(ckpt, checkpoint_workload(ckpt.meta.workload, "moved/wl.py:WL"))
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path

import onnx
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from edgeprune.contracts.checkpoint import CheckpointMeta, GraphInfo
from edgeprune.errors import UserError, named, one_line, show
from edgeprune.fsio import atomic_path
from edgeprune.graph.carried import Carried, read_graph
from edgeprune.masks import Granularity, MaskSet
from edgeprune.taskgraph.extract import extract_tasks
from edgeprune.workload.base import Workload
from edgeprune.workload.registry import checkpoint_workload
from edgeprune.workload.weights import (
    FLOAT_DTYPES,
    Header,
    HeaderError,
    TensorInfo,
    check_memory,
    load_state,
    read_header,
)


@dataclasses.dataclass
class CheckpointFile:
    state: dict[str, torch.Tensor]
    masks: MaskSet
    meta: CheckpointMeta
    graph: bytes | None  # the ONNX graph's bytes (sha256 checked), None where prune could not export it
    inputs: torch.Tensor  # calibration inputs at the workload's size, float32
    path: Path | None = None  # the file it was read from, for error messages

    def carried_graph(self) -> tuple[onnx.ModelProto, GraphInfo]:
        """The model graph the checkpoint carries, checked and run once on its first input; a
        :class:`UserError` when it has none (saying why) or the graph is not sound."""
        meta = self.meta
        where = str(self.path) if self.path is not None else "checkpoint"
        return read_graph(self.graph, meta.graph, meta.graph_error, meta.tasks, self.inputs[:1].numpy(), where)


# What a checkpoint's tensors may be: weights (and buffers) of a float32 model as torch saves
# them, and keep-masks of 0 and 1.
WEIGHT_DTYPES = frozenset({"F16", "BF16", "F32", "F64", "I8", "I16", "I32", "I64", "U8", "BOOL"})
MASK_DTYPES = frozenset({"U8", "BOOL"})
GRAPH, INPUTS = "g/onnx", "x/inputs"


def save_checkpoint(path: str | Path, model: nn.Module, masks: MaskSet, meta: CheckpointMeta, carried: Carried) -> None:
    """Write weights, masks, the carried graph and inputs, and metadata atomically; the
    metadata's granularity is the masks', its graph record the carried graph's."""
    tensors = {f"w/{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tensors.update({f"m/{k}": m.to(torch.uint8).contiguous() for k, m in masks.masks.items()})
    tensors[INPUTS] = carried.inputs.detach().float().contiguous().cpu()
    if carried.onnx is not None:
        tensors[GRAPH] = torch.frombuffer(bytearray(carried.onnx), dtype=torch.uint8)
    full = meta.model_copy(update={"granularity": {k: str(g) for k, g in masks.granularity.items()},
                                   "graph": carried.info, "graph_error": carried.reason})  # fmt: skip
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"edgeprune": full.to_metadata()})


def load_checkpoint(path: str | Path) -> CheckpointFile:
    """Read and validate a checkpoint; anything wrong with it is a :class:`UserError` that names
    the file. The header (every tensor's dtype, shape and byte range, checked against the file's
    size), the metadata, the pairing of masks with weights and the granularities are all checked
    before any tensor is read; then the masks must hold only 0 and 1 and the weights be finite."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        header = read_header(path)
    except (HeaderError, OSError) as exc:
        raise UserError(f"{path} is not a valid edgeprune checkpoint (corrupt or truncated: {one_line(exc)})") from None
    check_memory(path, header)
    raw = header.metadata.get("edgeprune")
    if raw is None:
        raise UserError(f"{path} is a safetensors file but not an edgeprune checkpoint (no metadata)")
    meta = _read_meta(raw, path)
    weights, masks = _check_tensors(header, path)
    _check_carried(header, meta, path)
    gran = _granularity(meta, masks, path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            tensors = {k: fh.get_tensor(k) for k in header.tensors}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise UserError(f"{path} is not a valid edgeprune checkpoint (corrupt or truncated: {one_line(exc)})") from None
    state = {name: tensors[f"w/{name}"] for name in weights}
    for name, info in weights.items():
        bad = int((~torch.isfinite(state[name])).sum()) if info.dtype in FLOAT_DTYPES else 0
        if bad:  # the wording of prune's own check (prune.pipeline.refuse_nonfinite)
            values = "value" if bad == 1 else "values"
            raise UserError(f"{path}: weight {named(name)} has {bad} non-finite {values} (NaN/Inf)")
    keep = {}
    for name in masks:
        mask = tensors[f"m/{name}"]
        as_bytes = mask.view(torch.uint8)
        if as_bytes.numel() and int(as_bytes.max()) > 1:
            raise UserError(f"{path}: mask {named(name)} holds values other than 0 and 1")
        keep[name] = as_bytes.view(torch.bool)  # no copy: the bytes are 0 or 1
    inputs = tensors[INPUTS]
    if not bool(torch.isfinite(inputs).all()):
        raise UserError(f"{path}: the carried inputs ({INPUTS}) hold non-finite values (NaN/Inf)")
    graph = tensors[GRAPH].numpy().tobytes() if GRAPH in tensors else None
    if graph is not None and meta.graph is not None and hashlib.sha256(graph).hexdigest() != meta.graph.sha256:
        raise UserError(f"{path}: the model graph ({GRAPH}) does not match the sha256 its metadata records")
    return CheckpointFile(state, MaskSet(keep, gran), meta, graph, inputs, path)


def _read_meta(raw: str, path: Path) -> CheckpointMeta:
    where = f"{path}: checkpoint metadata"
    try:
        meta = CheckpointMeta.from_json(raw, str(path))
    except UserError as exc:  # the field's name comes from the file: keep the line printable
        raise UserError(one_line(exc, limit=500)) from None
    if meta.sparsity is not None and not 0.0 <= meta.sparsity <= 1.0:  # also refuses NaN
        raise UserError(f"{where}: field sparsity: {meta.sparsity} is outside [0, 1]")
    for field in ("workload", "model", "method"):
        value = getattr(meta, field)
        if not value or not value.isprintable():
            raise UserError(f"{where}: field {field}: {show(value)} is not a name")
    for i, task in enumerate(meta.tasks):
        if not task or not task.isprintable():
            raise UserError(f"{where}: field tasks.{i}: {show(task)} is not a task name")
        if meta.tasks.count(task) > 1:
            raise UserError(f"{where}: field tasks: {show(task)} is listed twice")
    return meta


def _check_tensors(header: Header, path: Path) -> tuple[dict[str, TensorInfo], dict[str, TensorInfo]]:
    """Weights and masks by name, from the header alone: names, dtypes, and each mask beside a
    weight of its shape."""
    weights: dict[str, TensorInfo] = {}
    masks: dict[str, TensorInfo] = {}
    for key, info in header.tensors.items():
        if key in (GRAPH, INPUTS):
            continue
        kind, name = key[:2], key[2:]
        if kind not in ("w/", "m/") or not name:
            raise UserError(f"{path}: tensor {named(key)} is neither a weight (w/NAME), a mask (m/NAME), "
                            f"the graph ({GRAPH}) nor the inputs ({INPUTS})")  # fmt: skip
        if kind == "w/" and info.dtype not in WEIGHT_DTYPES:
            raise UserError(f"{path}: weight {named(name)} has dtype {info.dtype} (not a weight's dtype)")
        if kind == "m/" and info.dtype not in MASK_DTYPES:
            raise UserError(f"{path}: mask {named(name)} has dtype {info.dtype} (a mask is U8 or BOOL)")
        (weights if kind == "w/" else masks)[name] = info
    for name, info in masks.items():
        if name not in weights or weights[name].shape != info.shape:
            raise UserError(f"{path}: mask {named(name)} has no weight of its shape")
    return weights, masks


def _check_carried(header: Header, meta: CheckpointMeta, path: Path) -> None:
    """The graph tensor is there exactly when the metadata records one, as bytes; the inputs are
    float32, at least one, of the shape the graph was exported at."""
    graph = header.tensors.get(GRAPH)
    if (graph is None) != (meta.graph is None):
        has = "has no graph tensor" if graph is None else "has a graph tensor"
        raise UserError(f"{path}: the checkpoint {has} ({GRAPH}) but its metadata says otherwise")
    if graph is not None and (graph.dtype != "U8" or len(graph.shape) != 1):
        raise UserError(f"{path}: the graph ({GRAPH}) is not a 1-D U8 tensor of bytes")
    inputs = header.tensors.get(INPUTS)
    if inputs is None:
        raise UserError(f"{path}: the checkpoint has no inputs tensor ({INPUTS})")
    if inputs.dtype != "F32" or len(inputs.shape) < 2 or inputs.shape[0] < 1:
        raise UserError(f"{path}: the inputs ({INPUTS}) are not float32 samples (F32, at least 2-D, at least one)")
    if meta.graph is not None and list(inputs.shape[1:]) != meta.graph.input:
        raise UserError(f"{path}: the inputs ({INPUTS}) have shape {list(inputs.shape[1:])}, the graph's input "
                        f"{meta.graph.input}")  # fmt: skip


def _granularity(meta: CheckpointMeta, masks: dict[str, TensorInfo], path: Path) -> dict[str, Granularity]:
    """Each mask's granularity, which must fit the mask (a block or N:M group no larger than the
    weight seen as out x (in*kh*kw))."""
    gran = {}
    for name, text in meta.granularity.items():
        field = f"{path}: checkpoint metadata: field granularity.{named(name)}"
        if name not in masks:
            raise UserError(f"{field}: the checkpoint has no mask of that name")
        try:
            g = Granularity.parse(text)
        except UserError as exc:
            raise UserError(f"{field}: {one_line(exc)}") from None
        shape = masks[name].shape
        rows, cols = (shape[0], math.prod(shape[1:])) if len(shape) >= 2 else (0, 0)
        too_big = (g.kind == "block" and (g.a > rows or g.b > cols)) or (g.kind == "nm" and g.b > cols)
        if too_big or (g.kind != "element" and len(shape) < 2):
            raise UserError(f"{field}: {g} does not fit a weight of shape {list(shape)}")
        gran[name] = g
    return gran


def rebuild_model(ckpt: CheckpointFile, workload: Workload | None = None) -> nn.Module:
    """Rebuild the extracted architecture from ``workload`` (default: the one the metadata
    records) and load the checkpoint's weights into it (eval mode)."""
    where = str(ckpt.path) if ckpt.path is not None else "checkpoint"
    workload = workload if workload is not None else checkpoint_workload(ckpt.meta.workload)
    name = ckpt.meta.model
    if name not in workload.models:
        raise UserError(f"{where}: checkpoint model '{named(name)}' is not in workload '{workload.name}'")
    try:
        model = extract_tasks(workload.models[name].build().float(), ckpt.meta.tasks)
        load_state(model, ckpt.state, f"checkpoint {where}")
    except UserError as exc:
        message = one_line(exc)
        raise UserError(message if message.startswith("checkpoint ") else f"{where}: {message}") from None
    params = dict(model.named_parameters())
    for mask_name in ckpt.masks.masks:
        if mask_name not in params:
            raise UserError(f"{where}: mask {named(mask_name)} is not on a parameter of model '{named(name)}'")
    return model.eval()


def masked_model(ckpt: CheckpointFile, workload: Workload | None = None) -> nn.Module:
    """:func:`rebuild_model` with every pruned weight zeroed: the model a compiled artifact
    must reproduce."""
    model = rebuild_model(ckpt, workload)
    with torch.no_grad():
        ckpt.masks.apply(model)
    return model
