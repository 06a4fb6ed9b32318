"""Masked fine-tuning: the masks hold on every step.

Before each step the gradients of pruned weights are zeroed, and after it the masks are
applied again, so a pruned weight is exactly zero after any number of steps whatever the
optimiser does with momentum, adaptive moments or weight decay.

The bias of a filter whose weights are all pruned is frozen too: its output is a constant, a
following batch norm gives it a numerically-zero gradient that Adam would turn into full-size
random steps, and the drift between that bias and the norm's running mean is amplified by
1/sqrt(eps) in eval mode.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import cast

import torch
from torch import nn

from edgeprune.masks import MaskSet
from edgeprune.workload.base import Workload, repeat_batches


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """Steps, batch size, optimiser (``adam`` or ``sgd``), learning rate, momentum, weight decay."""

    steps: int = 200
    batch_size: int = 16
    optimizer: str = "adam"
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0


def make_optimizer(params: list[nn.Parameter], cfg: FinetuneConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def dead_filter_biases(
    params: dict[str, nn.Parameter], masks: MaskSet
) -> list[tuple[nn.Parameter, torch.Tensor, torch.Tensor]]:
    """(bias, rows whose weights are all pruned, their current values) for every masked layer
    with a bias."""
    out = []
    for name, mask in masks.masks.items():
        bias = params.get(name.removesuffix("weight") + "bias")
        if bias is None or mask.dim() < 1 or bias.shape[0] != mask.shape[0]:
            continue
        dead = ~mask.reshape(mask.shape[0], -1).any(dim=1)
        if dead.any():
            out.append((bias, dead, bias.detach()[dead].clone()))
    return out


def masked_finetune(
    model: nn.Module,
    masks: MaskSet,
    workload: Workload,
    tasks: list[str],
    cfg: FinetuneConfig,
    progress: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Fine-tune ``model`` on ``tasks`` for ``cfg.steps`` steps with ``masks`` held; returns the
    loss of each step. ``progress(step, loss)`` is called after every step."""
    params = dict(model.named_parameters())
    masked = {n: (params[n], m.to(params[n].dtype)) for n, m in masks.masks.items()}
    frozen = dead_filter_biases(params, masks)
    opt = make_optimizer([p for p in params.values() if p.requires_grad], cfg)
    torch.manual_seed(cfg.seed)
    masks.apply(model)
    model.train()
    history = []
    for step, (x, y) in enumerate(repeat_batches(workload, "train", cfg.batch_size, cfg.steps, tasks=tasks,
                                                 seed=cfg.seed), 1):  # fmt: skip
        loss = cast(torch.Tensor, sum(workload.task_losses(model(x), y).values()))
        opt.zero_grad(set_to_none=False)
        loss.backward()
        with torch.no_grad():
            for p, m in masked.values():
                if p.grad is not None:
                    p.grad.mul_(m)
            for bias, dead, _ in frozen:
                if bias.grad is not None:
                    bias.grad[dead] = 0
        opt.step()
        with torch.no_grad():
            for p, m in masked.values():
                p.mul_(m)
            for bias, dead, value in frozen:
                bias[dead] = value
        history.append(loss.item())
        if progress:
            progress(step, history[-1])
    model.eval()
    return history
