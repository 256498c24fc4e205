"""What a finished build writes: the learngene's tensors from the trained aux model, its recipe and its card."""

from __future__ import annotations

import os
import platform

import torch
from torch import nn

from ..artifact import render_card
from ..config import LearngeneConfig
from ..spec import ViTSpec
from .config import BuildConfig
from .ddp import Dist

__all__ = ["export_tensors", "render_build_card", "command", "hardware"]


def hardware(dev: torch.device, dist_: Dist) -> dict:
    hw = {
        "device": str(dev.type),
        "world_size": dist_.world,
        "backend": dist_.backend or "none",
        "torch": torch.__version__,
        "threads_per_process": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                hw["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if dev.type == "cuda":
        hw["gpu"] = torch.cuda.get_device_name(dev)
    return hw


def export_tensors(model: nn.Module, method: str, spec: ViTSpec) -> dict[str, torch.Tensor]:
    """The learngene tensors of the trained aux model (the method's ``export``: float32 CPU copies)."""
    from ..methods import get_method

    return get_method(method).export(model, spec)


def render_build_card(config: dict) -> str:
    """render_card plus the recipe: what a reader needs to judge and reproduce the learngene."""
    r = LearngeneConfig.from_dict(config).recipe
    lines = [
        render_card(config).rstrip(),
        "",
        "## How it was built",
        "",
        f"Distilled with `wavehub build` ({r['method']}, init `{r['init']}`) from `{r['ancestry']}`.",
        "",
        "| | |",
        "|---|---|",
    ]
    rows = [
        ("data", r["data"]),
        ("image size", f"{r['img_size']} px"),
        ("steps", r["steps"]),
        ("global batch", r["batch_size"]),
        ("images seen", f"{r['images_seen']:,}"),
        (
            "optimizer",
            f"AdamW lr {r['lr']} (cosine, {r['warmup_steps']} warmup steps), wd {r['weight_decay']}",
        ),
        ("losses", r["losses"]),
        ("loss first → last", f"{r['loss_first']:.4f} → {r['loss_last']:.4f}"),
        (
            "held-out KD loss before → after",
            f"{r['heldout_before']:.4f} → {r['heldout_after']:.4f}"
            if r.get("heldout_after") is not None
            else "n/a",
        ),
        ("wall time", f"{r['wall_time_s']:.0f} s ({r['img_per_s']:.1f} img/s)"),
        (
            "hardware",
            f"{r['hardware'].get('cpu')} / {r['hardware'].get('gpu', 'no GPU')}, "
            f"{r['hardware']['world_size']} process(es), backend {r['hardware']['backend']}",
        ),
    ]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "Reproduce:", "", "```bash", r["command"], "```", ""]
    return "\n".join(lines)


def command(cfg: BuildConfig, world: int) -> str:
    pre = f"torchrun --nproc-per-node {world} -m wavehub build" if world > 1 else "wavehub build"
    return (
        f"{pre} --ancestry {cfg.ancestry} --method {cfg.method} --data {cfg.data} --init {cfg.init} "
        f"--template-size {cfg.template_size} --templates {cfg.templates} --steps {cfg.steps} "
        f"--batch-size {cfg.batch_size} --lr {cfg.lr} --img-size {cfg.img_size} --seed {cfg.seed} --out OUT"
    )
