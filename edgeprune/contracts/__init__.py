"""The files that travel between stages and machines, each one typed, versioned class:

- :mod:`~edgeprune.contracts.checkpoint`: the pruned checkpoint's metadata (prune -> compile);
- :mod:`~edgeprune.contracts.manifest`: the artifact's ``manifest.json`` (compile -> board);
- :mod:`~edgeprune.contracts.results`: ``results.json`` (bench -> report).

Every reader and writer goes through these classes; reading validates the whole document and a
bad file is one :class:`~edgeprune.errors.UserError` line that names the field. Pydantic and the
standard library only: the board imports this package too.
"""
