"""LEEP, the log expected empirical prediction (Nguyen et al., ICML 2020), used by SMSP
(arXiv 2307.04365, Sec. 3.2) to find the library tasks most similar to a new task.

With a source model's softmax outputs theta(x) over its labels z and the target labels y:
P(y, z) = mean_i theta(x_i)_z [y_i = y];  P(y | z) = P(y, z) / P(z);
LEEP = mean_i log( sum_z P(y_i | z) theta(x_i)_z ). Higher means more transferable.
"""

from __future__ import annotations

import torch
from torch import Tensor


def leep(source_probs: Tensor, target_labels: Tensor, num_target_labels: int | None = None) -> float:
    """LEEP score of the source distribution ``source_probs`` (N x Z) for ``target_labels`` (N)."""
    probs = source_probs.double()
    n_y = num_target_labels or int(target_labels.max()) + 1
    onehot = torch.nn.functional.one_hot(target_labels.long(), n_y).double()  # N x Y
    joint = onehot.T @ probs / len(probs)  # Y x Z
    cond = joint / joint.sum(dim=0, keepdim=True).clamp_min(1e-300)  # P(y | z)
    expected = (probs @ cond.T)[torch.arange(len(probs)), target_labels.long()]  # sum_z P(y_i|z) theta_z
    return float(torch.log(expected.clamp_min(1e-300)).mean())
