"""Device side: load and run an artifact's models. Imports neither torch nor any compiler, so a
board needs only numpy, onnxruntime (or, later, the TVM runtime) and the kernel library.

A backend's models are run by a :class:`~edgeprune.runtime.runner.Runner`; ``RUNNERS`` maps the
manifest's ``backend`` to the one that runs it."""
