"""The one learning-rate schedule of wavehub: linear warmup, then cosine decay (fit, bank fitting, distill)."""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["warmup_steps", "warmup_cosine"]


def warmup_steps(total: int, warmup: float | int) -> int:
    """Warmup length in steps: a fraction of ``total`` (a float below 1) or a step count, below ``total``."""
    w = int(round(warmup * total)) if isinstance(warmup, float) and warmup < 1 else int(warmup)
    return max(0, min(w, total - 1))


def warmup_cosine(total: int, warmup: float | int, min_ratio: float = 0.0) -> Callable[[int], float]:
    """The lr factor per step (for ``LambdaLR``): ``(s + 1) / (w + 1)`` over the ``w`` warmup steps, then a
    cosine from 1 down to ``min_ratio`` at step ``total`` (held there if a run goes past it)."""
    w = warmup_steps(total, warmup)
    span = max(1, total - w)

    def factor(s: int) -> float:
        if s < w:
            return (s + 1) / (w + 1)
        c = 0.5 * (1.0 + math.cos(math.pi * min(s - w, span) / span))
        return c if not min_ratio else min_ratio + (1 - min_ratio) * c

    return factor
