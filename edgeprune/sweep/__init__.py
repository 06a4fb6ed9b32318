"""``edgeprune sweep``: prune -> evaluate -> compile -> bench over a grid of methods,
sparsities, granularities, targets and backends, into one resumable results directory."""
