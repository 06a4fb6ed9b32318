"""Models of the ``digit-pool`` workload (the SMSP task pool): a small CNN and a small vision
transformer, each a shared backbone with one linear head per task.

The transformer's attention and MLP modules declare their prunable *structures* (attention
heads; MLP hidden nodes) so structured pruning (SMSP, arXiv 2307.04365 Sec. 3.3) can remove a
head or a node across every tensor it spans.

Usage::

    net = PoolViT({"digit": 10, "parity": 2})
    net(torch.zeros(1, 1, 28, 28))["parity"].shape      # (1, 2)
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

Part = tuple[str, int, int, int]  # (parameter name, dim, start, stop)


class Attention(nn.Module):
    """Multi-head self-attention with separate q, k, v and output projections."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q, self.k, self.v, self.proj = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, n, self.heads, self.head_dim).transpose(1, 2)

        y = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)))
        return self.proj(y.transpose(1, 2).reshape(b, n, d))

    def structures(self, prefix: str) -> list[tuple[str, list[Part]]]:
        """One structure per head: its rows of q, k, v and its columns of the projection."""
        out = []
        for h in range(self.heads):
            a, z = h * self.head_dim, (h + 1) * self.head_dim
            parts = [(f"{prefix}.{m}.weight", 0, a, z) for m in ("q", "k", "v")] + [(f"{prefix}.proj.weight", 1, a, z)]
            out.append((f"{prefix}#head{h}", parts))
        return out


class MLP(nn.Module):
    """Transformer feed-forward block."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))

    def structures(self, prefix: str) -> list[tuple[str, list[Part]]]:
        """One structure per hidden node: its row of fc1 and its column of fc2."""
        return [(f"{prefix}#node{j}", [(f"{prefix}.fc1.weight", 0, j, j + 1), (f"{prefix}.fc2.weight", 1, j, j + 1)])
                for j in range(self.fc1.out_features)]  # fmt: skip


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), MLP(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PoolViT(nn.Module):
    """ViT on 28x28 digits: 7x7 patches, a class token, ``depth`` blocks, linear task heads."""

    def __init__(self, task_classes: dict[str, int], dim: int = 64, depth: int = 2, heads: int = 4,
                 hidden: int = 128) -> None:  # fmt: skip
        super().__init__()
        self.patch = nn.Conv2d(1, dim, 7, stride=7)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, 17, dim) * 0.02)
        self.blocks = nn.Sequential(*(Block(dim, heads, hidden) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.heads = nn.ModuleDict({t: nn.Linear(dim, c) for t, c in task_classes.items()})

    def structures(self, prefix: str = "") -> list[tuple[str, list[Part]]]:
        """The attention heads and MLP nodes of every block (embeddings and heads stay dense)."""
        out = []
        for i, block in enumerate(cast(Block, b) for b in self.blocks):
            out += block.attn.structures(f"{prefix}blocks.{i}.attn") + block.mlp.structures(f"{prefix}blocks.{i}.mlp")
        return out

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        p = self.patch(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(p.shape[0], -1, -1), p], dim=1) + self.pos
        feat = self.norm(self.blocks(tokens))[:, 0]
        return {t: head(feat) for t, head in self.heads.items()}


class PoolCNN(nn.Module):
    """Three conv layers and a hidden fully-connected layer shared by linear task heads."""

    def __init__(self, task_classes: dict[str, int], width: int = 16, hidden: int = 128) -> None:
        super().__init__()
        w = width
        self.backbone = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.BatchNorm2d(4 * w), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
            nn.Flatten(), nn.Linear(16 * w, hidden), nn.ReLU(),
        )  # fmt: skip
        self.heads = nn.ModuleDict({t: nn.Linear(hidden, c) for t, c in task_classes.items()})

    def structures(self, prefix: str = "") -> list[tuple[str, list[Part]]]:
        """Filters and hidden nodes, each with the next layer's input slice it feeds (the 2x2
        pooled map gives each last-conv filter 4 inputs of the hidden layer)."""
        convs, fc = [0, 4, 8], 13
        out: list[tuple[str, list[Part]]] = []
        for i, c in enumerate(convs):
            w = cast(nn.Conv2d, self.backbone[c]).weight
            for f in range(w.shape[0]):
                parts: list[Part] = [(f"{prefix}backbone.{c}.weight", 0, f, f + 1)]
                if i + 1 < len(convs):
                    parts.append((f"{prefix}backbone.{convs[i + 1]}.weight", 1, f, f + 1))
                else:
                    parts.append((f"{prefix}backbone.{fc}.weight", 1, 4 * f, 4 * f + 4))
                out.append((f"{prefix}backbone.{c}#filter{f}", parts))
        for j in range(cast(nn.Linear, self.backbone[fc]).out_features):
            parts = [(f"{prefix}backbone.{fc}.weight", 0, j, j + 1)]
            parts += [(f"{prefix}heads.{t}.weight", 1, j, j + 1) for t in self.heads]
            out.append((f"{prefix}backbone.{fc}#node{j}", parts))
        return out

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feat = self.backbone(x)
        return {t: head(feat) for t, head in self.heads.items()}
