"""The per-layer plan every backend receives: each prunable convolution of the dense graph with
its input shape (measured by running the graph once), the format the cost model chose for it
and the weight in that format. Backends differ in what they emit, never in what they choose."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgeprune.contracts.manifest import LayerRecord
from edgeprune.costmodel.table import CostTable
from edgeprune.export.choose import DEFAULT_BLOCKS, DEFAULT_NM, choose
from edgeprune.export.sites import ConvSite, conv_sites
from edgeprune.formats.compressed import Compressed
from edgeprune.formats.shrunk import Shrunk
from edgeprune.runtime.kernel_library import session

Shapes = tuple[tuple[int, int], ...]


@dataclasses.dataclass
class PlannedLayer:
    site: ConvSite
    record: LayerRecord
    weight: Compressed | Shrunk | None  # None: the layer stays dense


def intermediates(model: onnx.ModelProto, names: list[str], x: np.ndarray,
                  types: dict[str, int] | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Run the model once on ``x`` with the tensors ``names`` as extra outputs (a name that is the
    graph's input or already an output is read as such). ``types``: their element types (default
    float32)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    feed = probe.graph.input[0].name
    known = {o.name for o in probe.graph.output}
    wanted = [n for n in dict.fromkeys(names) if n != feed]
    extra = [n for n in wanted if n not in known]
    types = types or {}
    probe.graph.output.extend(helper.make_tensor_value_info(n, types.get(n, TensorProto.FLOAT), None) for n in extra)
    found = {feed: x} if feed in names else {}
    if wanted:  # run([]) would return every output
        outs = session(probe.SerializeToString(), threads=1).run(wanted, {feed: x})
        found.update(zip(wanted, (np.asarray(o) for o in outs), strict=True))
    return found


def input_shapes(model: onnx.ModelProto, names: list[str], x: np.ndarray) -> dict[str, list[int]]:
    """The shapes of the tensors ``names`` (the convolution inputs) in one run on ``x``."""
    return {n: list(v.shape) for n, v in intermediates(model, names, x).items()}


def plan_layers(
    dense: onnx.ModelProto, x: np.ndarray, table: CostTable, policy: str,
    blocks: Shapes = DEFAULT_BLOCKS, nms: Shapes = DEFAULT_NM,
) -> list[PlannedLayer]:  # fmt: skip
    """``blocks`` and ``nms``: the block and N:M shapes to try, the pruning's own first."""
    sites = conv_sites(dense)
    shapes = input_shapes(dense, [s.node.input[0] for s in sites], x)
    planned = []
    for site in sites:
        record, weight = choose(site, shapes[site.node.input[0]], table, policy, blocks, nms)
        planned.append(PlannedLayer(site, record, weight))
    return planned
