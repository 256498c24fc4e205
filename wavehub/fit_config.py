"""The scaler fit's options and their defaults, in one place: :func:`wavehub.fit.fit_scalers`, ``wavehub fit`` and
docs/api.md all read them from :class:`FitConfig`. No torch import, so the CLI can show them at once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .errors import SpecError

__all__ = ["FitConfig", "TRAINABLE", "DISTILL_TARGETS"]

#: What ``train=`` may name. Templates are never in it: they are shared by every size and stay frozen.
TRAINABLE = ("scalers", "norms", "head", "pos_embed")
#: What ``distill=`` may name (None: no distillation term).
DISTILL_TARGETS = (None, "aux")


@dataclass(frozen=True)
class FitConfig:
    """How a scaler fit runs; the defaults were chosen by benchmarks/fit_quality.py (benchmarks/README.md).

    ``steps`` wins over ``epochs`` (passes over the training loader). ``subset``: a fraction (< 1) or a count
    (>= 1) of a named dataset's training split, class-balanced; None uses the whole split. ``eval_subset``:
    held-out images for the reported accuracy. ``lr`` may be a dict per ``train`` group.
    """

    steps: int | None = None
    epochs: float = 2.0
    lr: float | dict[str, float] = 1e-2
    weight_decay: float = 0.0
    batch_size: int = 64
    train: tuple[str, ...] = TRAINABLE
    warmup: float | int = 0.1
    clip_grad: float | None = 1.0
    subset: float | int | None = None
    augment: bool = False
    eval_subset: int | None = 1000
    distill: str | None = None
    distill_weight: float = 1.0
    precision: str = "auto"
    init: str = "resample"
    seed: int = 0
    bank: bool | str = True
    progress: bool = True

    @classmethod
    def from_options(
        cls, config: FitConfig | None = None, **options: Any
    ) -> tuple[FitConfig, dict[str, Any]]:
        """``config`` (or the defaults) with the options that are fields replaced, and the other options.

        An option given as None means "the default" for ``epochs`` (so callers can pass an unset CLI value)."""
        names = {f.name for f in dataclasses.fields(cls)}
        mine = {k: v for k, v in options.items() if k in names}
        if mine.get("epochs", 0) is None:
            del mine["epochs"]
        if "train" in mine and not isinstance(mine["train"], str):
            mine["train"] = tuple(mine["train"])
        return dataclasses.replace(config or cls(), **mine), {
            k: v for k, v in options.items() if k not in names
        }

    def validate(self) -> None:
        """Refuse option values no fit can run with (SpecError naming the option)."""
        if self.distill not in DISTILL_TARGETS:
            raise SpecError(f"unknown distill={self.distill!r}", "Use distill=None or distill='aux'.")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise SpecError(f"steps must be a positive integer, got {self.steps!r}", "Pass e.g. steps=200.")
        if self.epochs is None or not self.epochs > 0:
            raise SpecError(f"epochs must be > 0, got {self.epochs!r}", "Pass e.g. epochs=2.")
