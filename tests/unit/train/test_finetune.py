import pytest
import torch

from edgeprune.masks import MaskSet, prunable_parameters
from edgeprune.train.finetune import FinetuneConfig, masked_finetune
from edgeprune.workload.digits import make_workload
from edgeprune.workload.registry import build_model


@pytest.mark.parametrize(
    "cfg",
    [FinetuneConfig(steps=30, batch_size=32, optimizer="sgd", lr=0.02, momentum=0.9, weight_decay=1e-2),
     FinetuneConfig(steps=30, batch_size=32, optimizer="adam", lr=1e-2, weight_decay=1e-2)],
    ids=["sgd-momentum-wd", "adamw-wd"],
)  # fmt: skip
def test_pruned_weights_stay_exactly_zero_through_finetuning(cfg):
    workload = make_workload()
    model = build_model(workload)  # the shipped pre-trained tiny model
    params = prunable_parameters(model)
    masks = MaskSet({n: torch.rand(p.shape) > 0.7 for n, p in params.items()})
    before = {n: p.detach().clone() for n, p in params.items()}
    losses = masked_finetune(model, masks, workload, ["digit", "parity"], cfg)
    assert len(losses) == cfg.steps
    for name, mask in masks.masks.items():
        w = params[name].detach()
        assert torch.count_nonzero(w[~mask]) == 0, name
    moved = [not torch.equal(params[n].detach()[m], before[n][m]) for n, m in masks.masks.items()
             if n.startswith(("backbone", "heads.digit", "heads.parity"))]  # fmt: skip
    assert all(moved)  # kept weights of the trained tasks did train
    assert sum(losses[-5:]) < sum(losses[:5])  # and the loss went down


def test_bias_of_a_fully_pruned_filter_is_frozen():
    from edgeprune.workload.pool import make_workload as pool_workload

    workload = pool_workload()
    model = build_model(workload, "pool-cnn")
    params = prunable_parameters(model)
    masks = MaskSet({n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()})
    masks.masks["backbone.0.weight"][:8] = False  # filters 0-7 gone; a batch norm follows
    bias = dict(model.named_parameters())["backbone.0.bias"]
    before = bias.detach().clone()
    masked_finetune(model, masks, workload, ["parity"], FinetuneConfig(steps=20, batch_size=32, lr=1e-3))
    assert torch.equal(bias.detach()[:8], before[:8])
    assert not torch.equal(bias.detach()[8:], before[8:])
