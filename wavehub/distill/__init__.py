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

from ..tleg_module import TlegModel
from .checkpoint import CHECKPOINT_FILE, read_checkpoint
from .config import BuildConfig, RunOptions
from .losses import distill_loss, feature_layers, feature_loss, heldout_loss
from .train import LOG_FILE, build, build_learngene

__all__ = ["BuildConfig", "RunOptions", "build", "build_learngene", "TlegModel", "distill_loss", "heldout_loss",
           "feature_layers", "feature_loss", "CHECKPOINT_FILE", "LOG_FILE", "read_checkpoint"]
