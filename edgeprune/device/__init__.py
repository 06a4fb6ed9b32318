"""Boards over the network, on Apache TVM's RPC (tracker, servers, sessions): ``device serve``
on a board (:mod:`.serve`, with edgeprune's functions, :mod:`.functions`), and the caller's side
(:mod:`.client`: one board; :mod:`.fleet`: every board of several keys). TVM is the RPC engine
only, imported with its runtime library (``TVM_USE_RUNTIME_LIB=1``), never its compiler; no
PyTorch, no exporter."""
