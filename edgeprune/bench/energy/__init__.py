"""Energy per inference: sensor backends (one module each), the sampling thread, and the block
mode bench measures with. Nothing here imports torch or a compiler: it runs on the board."""
