"""A deploy resolution ``HxW`` as the user writes it (``--input-size``, a sweep's
``input_size``): one parser, so every place refuses the same texts with the same words."""

from __future__ import annotations

import re

from edgeprune.errors import UserError


def parse_resolution(text: str, option: str = "--input-size") -> tuple[int, int]:
    """``(H, W)`` from ``HxW``; ``option`` names where the text came from in the error line."""
    match = re.fullmatch(r"([0-9]+)x([0-9]+)", text.strip().lower())
    if match is None:
        raise UserError(f"{option} '{text}' is not HxW (e.g. 224x224)")
    if any(len(side) > 9 for side in match.groups()):  # int() of thousands of digits is refused by Python itself
        raise UserError(f"{option} '{text}' is far larger than any model can run at")
    h, w = int(match[1]), int(match[2])
    if h < 1 or w < 1:
        raise UserError(f"{option} {h}x{w}: each side must be at least 1")
    return h, w
