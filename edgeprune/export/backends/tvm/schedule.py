"""Schedule templates for the dense convolutions a Relax module keeps: without them TVM 0.27's
default CPU pipeline runs a convolution as a plain loop nest, about 90x slower than ONNX Runtime
(measured on ``mtl-resnet`` at 224x224). One template covers the convolution classes the models
use: 3x3, 1x1, strided and dilated (topi's ``conv2d_nchw`` block) and grouped and depthwise
(``group_conv2d_nchw``). Each works on the fused PrimFunc (padding, convolution, then the bias,
residual and activation blocks that FuseOps put after it):

- the elementwise blocks after the convolution are inlined into the last one, which writes the
  output; its loops are tiled (output channels x output width) and the convolution is computed
  at each tile into a ``local`` accumulator: a register block of ``oc`` rows and ``ow`` lanes;
- the reduction (input channels, kernel rows, kernel columns) runs outside the register block;
  the width is vectorised and the channels unrolled; the outer loops run in parallel;
- the padding block stays a separate, parallel and vectorised pass, except for a depthwise
  convolution, whose padded plane is made per channel, just before the channel is computed.

A PrimFunc a template does not recognise is left to TVM's default. MetaSchedule tuning (where a
tuning database exists for the target) replaces these schedules for the functions it tuned.
"""

from __future__ import annotations

from typing import Any

CONV_BLOCKS = ("conv2d_nchw", "group_conv2d_nchw")


def _divisor(extent: int, most: int) -> int:
    """The largest divisor of ``extent`` that is at most ``most`` (a tile that needs no tail)."""
    return max(d for d in range(1, min(extent, most) + 1) if extent % d == 0)


def _is_one(extent: Any) -> bool:
    return isinstance(getattr(extent, "value", None), int) and int(extent.value) == 1


def _extent(sch: Any, loop: Any) -> int:
    return int(sch.get(loop).extent)


def _stride_two(padded_w: int, kernel_w: int, out_w: int) -> bool:
    """Whether a convolution over an even ``padded_w`` reads every other column (stride 2, not
    dilated): then its padded input is split into even and odd columns."""
    return padded_w % 2 == 0 and padded_w - kernel_w + 1 != out_w and (padded_w - kernel_w) // 2 + 1 == out_w


def _split_even_odd_columns(sch: Any, pad: Any) -> None:
    """The padding block ``pad`` writes its plane's even and odd columns apart, so that a stride-2
    convolution reads a row of inputs contiguously instead of gathering every other one."""
    sch.transform_layout(pad, ("write", 0), lambda n_, c_, h_, w_: (n_, c_, h_, w_ % 2, w_ // 2))


def schedule_conv(func: Any, lanes: int) -> Any | None:
    """``func`` scheduled by the convolution template, or None when it holds no convolution the
    template knows. ``lanes``: float32 lanes of the target's vectors (16 with AVX-512)."""
    from tvm import s_tir

    sch = s_tir.Schedule(func)
    root = sch.get_sblock("root")
    blocks = sch.get_child_blocks(root)
    names = [sch.get(b).name_hint for b in blocks]
    conv_name = next((n for n in names if n in CONV_BLOCKS), None)
    if conv_name is None or names.count(conv_name) != 1:
        return None
    at = names.index(conv_name)
    conv = blocks[at]
    conv_loops = sch.get_loops(conv)
    if len(conv_loops) != 7:  # n, c, h, w and three reduction loops (NCHW, 2-D)
        return None
    reduce_extents = [_extent(sch, loop) for loop in conv_loops[4:]]
    after = blocks[at + 1 :]
    for b in after[:-1]:
        sch.compute_inline(b)
    out = after[-1] if after else sch.cache_write(conv, 0, "global")
    loops = sch.get_loops(out)
    if len(loops) != 4:
        return None
    n, c, h, w = loops
    out_w = _extent(sch, w)
    # 16 x lanes measured best on mtl-resnet with AVX-512 (16 x 32 spills: 3x slower); a depthwise
    # convolution (one input channel per output) reads a plane per channel: one channel at a time
    depthwise = reduce_extents[0] == 1
    oc_i = _divisor(_extent(sch, c), 1 if depthwise else 16)
    ow_i = _divisor(_extent(sch, w), lanes)
    if ow_i < 4 and _extent(sch, w) > 4:  # a prime width: the whole row
        ow_i = _extent(sch, w) if _extent(sch, w) <= 4 * lanes else ow_i
    co, ci = sch.split(c, [None, oc_i])
    wo, wi = sch.split(w, [None, ow_i])
    sch.reorder(n, co, h, wo, ci, wi)
    sch.compute_at(conv, wo)
    sch.set_scope(conv, 0, "local")
    # compute_at leaves the tile's loops, then the reduction's; loops of extent 1 are dropped
    kept = [e for e in (oc_i, ow_i) if e > 1]
    loops = sch.get_loops(conv)[4:]
    if len(loops) != len(kept) + sum(e > 1 for e in reduce_extents):
        return None
    tile, reduction = loops[: len(kept)], loops[len(kept) :]
    if not reduction:
        return None
    sch.reorder(*reduction, *tile)
    if ow_i > 1:
        sch.vectorize(tile[-1])
    if oc_i > 1:
        sch.unroll(tile[0])
    sch.unroll(ci)
    sch.vectorize(wi)
    stride_two = at == 1 and _stride_two(_extent(sch, sch.get_loops(blocks[0])[-1]), reduce_extents[2], out_w)
    if depthwise and at == 1:
        # the padded plane of each channel is made just before it is used (it stays in cache):
        # measured 1.8-2.2x faster than a padded copy of the whole tensor first
        if stride_two and reduce_extents[2] >= 5:
            # 144 channels at 56x56, 5x5: 0.29 -> 0.22 ms; with 3x3 taps the scattered copy of a
            # channel's plane costs what the contiguous reads save
            _split_even_odd_columns(sch, blocks[0])
        sch.compute_at(blocks[0], co)
        sch.vectorize(sch.get_loops(blocks[0])[-1])
        sch.parallel(sch.fuse(n, co))
        sch.decompose_reduction(conv, reduction[0])
        return sch.mod["main"]
    if stride_two:  # 64 -> 128 channels at 56x56, 3x3: 0.94 -> 0.78 ms (ORT 0.51)
        _split_even_odd_columns(sch, blocks[0])
    sch.parallel(sch.fuse(n, co, h))
    for b in blocks[:at]:  # padding: parallel over rows, vectorised along them
        pl = sch.get_loops(b)
        if len(pl) == 4:
            sch.parallel(sch.fuse(pl[0], pl[1], pl[2]))
            sch.vectorize(pl[3]) if _extent(sch, pl[3]) <= 4096 else None
    sch.decompose_reduction(conv, reduction[0])
    return sch.mod["main"]


def schedule_elementwise(func: Any, lanes: int) -> Any | None:
    """``func`` as one loop nest, vectorised, when every block in it is elementwise (each output
    reads one element of each input: bias, residual, activation and batch-norm chains); None
    otherwise."""
    from tvm import s_tir, tirx

    sch = s_tir.Schedule(func)
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    if not blocks or any(iv.iter_type != tirx.IterVar.DataPar for b in blocks for iv in sch.get(b).iter_vars):
        return None
    # a gather (Resize reads a window of its input per output) vectorises into slow gathers: left alone
    if any(not _is_one(r.extent) for b in blocks for region in sch.get(b).reads for r in region.region):
        return None
    try:
        for b in blocks[:-1]:
            sch.compute_inline(b)
    except s_tir.ScheduleError:
        return None
    loops = sch.get_loops(blocks[-1])
    if len(loops) == 4:
        # NCHW: each channel's plane one vectorised loop, so a per-channel operand (a batch norm's
        # scale and shift) is one scalar per plane, not a per-lane gather
        channels, plane = sch.fuse(loops[0], loops[1]), sch.fuse(loops[2], loops[3])
        inner = _divisor(_extent(sch, plane), lanes)
        if inner > 1:
            sch.vectorize(sch.split(plane, [None, inner])[1])
        sch.parallel(channels)
        return sch.mod["main"]
    fused = sch.fuse(*loops) if len(loops) > 1 else loops[0]
    inner = _divisor(_extent(sch, fused), lanes)
    if inner > 1:
        outer, vec = sch.split(fused, [None, inner])
        sch.vectorize(vec)
        sch.parallel(outer)
    else:
        sch.parallel(fused)
    return sch.mod["main"]


def schedule_module(mod: Any, lanes: int) -> tuple[Any, int]:
    """Every convolution PrimFunc of ``mod`` scheduled by its template, every elementwise one
    vectorised (those the tuning database scheduled are left as they are); how many convolutions
    were scheduled."""
    import tvm

    done = 0
    updates = {}
    for gv, func in mod.functions.items():
        if not isinstance(func, tvm.tirx.PrimFunc) or (func.attrs is not None and "tirx.is_scheduled" in func.attrs):
            continue  # a function the tuning database scheduled, or one made scheduled (Resize)
        scheduled = schedule_conv(func, lanes) if "conv" in gv.name_hint else None
        done += scheduled is not None
        scheduled = scheduled or schedule_elementwise(func, lanes)
        if scheduled is not None:
            updates[gv] = scheduled
    for gv, func in updates.items():
        mod[gv] = func
    return mod, done
