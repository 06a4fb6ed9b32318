"""workload.weights: the hash that ties a checkpoint or mask library entry to its source model."""

import torch

from edgeprune.models.digits import DigitsCNN
from edgeprune.workload.weights import state_hash


def test_source_hash_is_stable_and_sensitive_to_weights():
    torch.manual_seed(1)
    model = DigitsCNN({"digit": 10})
    first = state_hash(model.state_dict())
    assert state_hash(model.state_dict()) == first
    with torch.no_grad():
        model.heads["digit"][0].weight[0, 0] += 1e-3
    assert state_hash(model.state_dict()) != first
