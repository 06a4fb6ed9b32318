"""Workload data: batches cover a split once; the digits labels agree with each other."""

import torch

from edgeprune.workload.registry import resolve_workload


def test_batches_cover_the_split_once():
    wl = resolve_workload("digits")
    seen = sum(len(x) for x, _ in wl.batches("eval", 300, shuffle_seed=1))
    assert seen == len(wl.split("eval")[0]) == 1000
    x, y = next(wl.batches("eval", 8, tasks=["parity"]))
    assert list(y) == ["parity"] and torch.equal(y["parity"], torch.arange(2)[y["parity"]])


def test_digits_labels_are_consistent():
    _, y = resolve_workload("digits").split("train")
    assert torch.equal(y["parity"], y["digit"] % 2) and torch.equal(y["ge5"], (y["digit"] >= 5).long())
