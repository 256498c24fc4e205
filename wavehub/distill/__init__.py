"""Stage 1: build a learngene by distilling an ancestry into an auxiliary model made of templates.

The aux model has the ancestry's depth and width, and every templated weight is ``Σ_t S_t ⊗ T_t`` (WAVE,
:class:`~wavehub.wave_module.WaveModel` with trainable templates) or ``θ_base + (l/L)·θ_ilayer`` (TLEG).
It learns from the frozen ancestry by feature KD (cosine + relative MSE on the final tokens and a few
intermediate residual streams) and, when the ancestry has a classifier, logit KD (+ CE when the data's labels
are the ancestry's classes). The templates (and aux scalers/extras) become the learngene.

Data parallel through ``torch.distributed`` (gloo on CPU, nccl on GPU) with a manual gradient all-reduce: the
same call under ``torchrun --nproc-per-node N -m wavehub build ...`` gives every rank its slice of each global
batch (see :mod:`wavehub.distill_data`), so N processes reproduce the 1-process run with the same global batch.
Rank 0 writes atomic checkpoints (model, optimizer, scheduler, RNG, step = data position) and the artifact.

One module per job: :mod:`.config` (BuildConfig, RunOptions), :mod:`.models` (aux models, teacher, start),
:mod:`.losses`, :mod:`.ddp`, :mod:`.checkpoint`, :mod:`.export` (tensors, recipe, card), :mod:`.train`.
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy, like the package's own __init__: ``wavehub.distill.config`` (the defaults the CLI shows) imports no torch.
_LAZY = {
    "BuildConfig": ".config",
    "RunOptions": ".config",
    "build": ".train",
    "build_learngene": ".train",
    "LOG_FILE": ".train",
    "CHECKPOINT_FILE": ".checkpoint",
    "read_checkpoint": ".checkpoint",
    "distill_loss": ".losses",
    "heldout_loss": ".losses",
    "feature_layers": ".losses",
    "feature_loss": ".losses",
    "TlegModel": "..tleg_module",
}

__all__ = [
    "BuildConfig",
    "RunOptions",
    "build",
    "build_learngene",
    "TlegModel",
    "distill_loss",
    "heldout_loss",
    "feature_layers",
    "feature_loss",
    "CHECKPOINT_FILE",
    "LOG_FILE",
    "read_checkpoint",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
