"""The host build of the kernel library (``libedgeprune_ort.so``), made by ``pip install``."""
