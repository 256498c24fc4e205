"""Build checkpoints: safetensors (tensors) + JSON metadata (everything else), written atomically; no pickle."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..artifact import atomic_write_bytes
from ..errors import BuildError
from .config import BuildConfig

__all__ = ["CHECKPOINT_FILE", "CHECKPOINT_VERSION", "save_checkpoint", "read_checkpoint", "load_checkpoint"]

CHECKPOINT_FILE = "build_checkpoint.safetensors"
CHECKPOINT_VERSION = 2  # 2: safetensors (tensors) + JSON metadata (everything else); no pickle


def save_checkpoint(path: Path, state: dict) -> None:
    """Safetensors only, like every file wavehub writes: tensors go in the tensor file, the rest (optimizer
    hyper-parameters, step, summary) into its JSON metadata, with dict keys typed so int keys survive."""
    from safetensors.torch import save as st_save

    tensors: dict[str, torch.Tensor] = {}

    def pack(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            name = f"t{len(tensors)}"
            tensors[name] = x.detach().to("cpu").clone().contiguous()
            return {"__tensor__": name}
        if isinstance(x, dict):
            return {"__dict__": [[k, pack(v)] for k, v in x.items()]}
        if isinstance(x, (list, tuple)):
            return [pack(v) for v in x]
        return x

    meta = json.dumps(pack(state))
    atomic_write_bytes(path, st_save(tensors, metadata={"wavehub_checkpoint": meta}))


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The state a build checkpoint holds (the inverse of ``save_checkpoint``); no pickle involved."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {})["wavehub_checkpoint"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}

    def unpack(x: Any) -> Any:
        if isinstance(x, dict):
            if "__tensor__" in x:
                return tensors[x["__tensor__"]]
            return {k: unpack(v) for k, v in x["__dict__"]}
        if isinstance(x, list):
            return [unpack(v) for v in x]
        return x

    return unpack(meta)


def load_checkpoint(path: Path, cfg: BuildConfig) -> dict:
    """The checkpoint's state, refused when it is unreadable, of another version or of another recipe."""
    try:
        state = read_checkpoint(path)
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file
        raise BuildError(
            f"checkpoint {path} could not be read ({type(e).__name__})",
            "Delete it to start over, or point --out at the right folder.",
        ) from e
    if state.get("version") != CHECKPOINT_VERSION:
        raise BuildError(
            f"checkpoint {path} has version {state.get('version')!r}", "Delete it to start over."
        )
    want, have = cfg.fingerprint(), state.get("config", {})
    diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
    if diff:
        raise BuildError(
            f"--resume with different settings than the checkpoint: {', '.join(diff)}",
            "Resume with the original options, or build into a new --out folder.",
        )
    return state
