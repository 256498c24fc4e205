"""The build's two configs: what determines the learngene (:class:`BuildConfig`) and how one run goes
(:class:`RunOptions`: output, resume, checkpoints, device, logging)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BuildConfig", "RunOptions", "DEFAULT_STEPS"]

#: Steps when neither ``steps`` nor ``epochs`` is given.
DEFAULT_STEPS = 1000


@dataclass
class BuildConfig:
    """Everything that determines the result (the checkpoint fingerprint is made of these fields)."""

    ancestry: str
    method: str = "wave"
    data: str = "natural"
    init: str = "extract"
    template_size: int = 64
    templates: Any = 16
    bias_templates: int | None = None
    steps: int = DEFAULT_STEPS
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.0
    warmup_steps: int | None = None
    min_lr_ratio: float = 0.02
    clip_grad: float = 1.0
    img_size: int = 112
    seed: int = 0
    feature_weight_mid: float = 0.5
    kd_temperature: float = 1.0
    precision: str = "fp32"

    def fingerprint(self) -> dict:
        d = dataclasses.asdict(self)
        d["templates"] = str(d["templates"])
        return d

    def warmup(self) -> int:
        """Warmup steps: ``warmup_steps``, or a tenth of the run up to 100 steps."""
        return self.warmup_steps if self.warmup_steps is not None else min(100, self.steps // 10)


@dataclass
class RunOptions:
    """How one run goes; none of it changes the learngene, so a resumed run may change it."""

    out: Path = Path("learngene")
    epochs: float | None = None  # dataset data only: sets steps = ceil(epochs * len(train) / batch_size)
    resume: bool = False
    checkpoint_every: int = 100
    max_steps_this_run: int | None = None
    device: Any = None
    storage_dtype: str = "float32"
    name: str | None = None
    holdout: int = 64
    progress: bool = True
    log_every: int = 1
    force: bool = False

    def __post_init__(self) -> None:
        self.out = Path(os.fspath(self.out))
