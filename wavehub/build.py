"""The distillation's public names under their old module (``wavehub build`` and bank fitting import them here);
the code lives in :mod:`wavehub.distill`."""

from .distill import (
    CHECKPOINT_FILE,
    LOG_FILE,
    BuildConfig,
    RunOptions,
    TlegModel,
    build,
    build_learngene,
    distill_loss,
    feature_layers,
    feature_loss,
    heldout_loss,
    read_checkpoint,
)

__all__ = ["BuildConfig", "RunOptions", "build", "build_learngene", "TlegModel", "distill_loss", "heldout_loss",
           "feature_layers", "feature_loss", "CHECKPOINT_FILE", "LOG_FILE", "read_checkpoint"]
