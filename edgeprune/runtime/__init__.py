"""Device side: load and run an artifact. Imports neither torch nor any compiler."""
