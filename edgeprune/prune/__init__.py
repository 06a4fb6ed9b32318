"""Pruning methods behind one interface: importance criteria, mask policies, task structure."""
