"""``edgeprune report``: the results of one or more sweeps as Markdown and a self-contained HTML
page with plots (matplotlib, PNG and SVG): accuracy and latency against sparsity, the
accuracy-latency front, per-layer detail, the Pareto table with the commands that reproduce
each configuration, and provenance."""
