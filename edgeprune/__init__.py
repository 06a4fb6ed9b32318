"""edgeprune: multi-task pruning that turns sparsity into measured speed on edge devices."""

__version__ = "0.1.0"
