"""Bench: latency (and, later, energy) of an artifact against its dense baseline, same run."""
