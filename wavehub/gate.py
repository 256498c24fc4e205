"""The quality gate: a learngene is worth publishing only if it beats timm's random init.

At each size it measures the two things a user of the learngene gets, against timm's own random init of the same
architecture with the same data and seed: the frozen-feature linear probe (features without any training) and a
quick fine-tune (a few AdamW steps of the whole model). It passes only if the learngene is at least as good as
random init on both, at every size. ``wavehub gate FOLDER`` writes the result to ``FOLDER/gate.json``, bound to the
sha256 of the tensor file, and ``wavehub push`` refuses a folder without a passing record (unless ``--force``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import ArtifactError, WavehubError

__all__ = [
    "GateSize",
    "GateResult",
    "run_gate",
    "write_record",
    "read_record",
    "require_passing",
    "RECORD_FILE",
    "GateFailedError",
]

RECORD_FILE = "gate.json"


class GateFailedError(WavehubError):
    """The learngene measured below timm's random init: it must not be published."""


@dataclass
class GateSize:
    depth: int
    width: int
    probe: float
    probe_random: float
    finetune: float
    finetune_random: float
    passed: bool


@dataclass
class GateResult:
    sha256: str | None
    name: str | None
    dataset: str
    img_size: int | None
    n_train: int
    n_test: int
    steps: int
    margin: float
    sizes: list[GateSize] = field(default_factory=list)
    command: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.sizes) and all(s.passed for s in self.sizes)

    def table(self) -> str:
        """A markdown table of the measurements (accuracies in %)."""
        rows = [
            "| size | probe | probe, random init | fine-tune | fine-tune, random init | verdict |",
            "|---|---|---|---|---|---|",
        ]
        for s in self.sizes:
            rows.append(
                f"| {s.depth}x{s.width} | {100 * s.probe:.1f} | {100 * s.probe_random:.1f} | "
                f"{100 * s.finetune:.1f} | {100 * s.finetune_random:.1f} | {'pass' if s.passed else 'FAIL'} |"
            )
        return "\n".join(rows)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"passed": self.passed}


def _finetune(
    model: torch.nn.Module,
    train,
    test,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device,
) -> float:
    """A few AdamW steps of the whole model (the quality benchmark's short recipe), then test accuracy."""
    from .data import make_loader

    model = model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / warm))
    loader = make_loader(train, batch_size, shuffle=True, seed=seed, drop_last=len(train) > batch_size)
    done = 0
    while done < steps:
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x.to(device)), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            done += 1
            if done >= steps:
                break
    model.eval()
    right = 0
    with torch.no_grad():
        for x, y in make_loader(test, 256, shuffle=False):
            right += int((model(x.to(device)).argmax(-1).cpu() == y).sum())
    return right / len(test)


def run_gate(
    learngene: Any,
    *,
    sizes: tuple[tuple[int, int], ...] = ((4, 192), (6, 384)),
    dataset: str = "fashion-mnist",
    img_size: int | None = 56,
    n_train: int = 2000,
    n_test: int = 1000,
    steps: int = 30,
    batch_size: int = 32,
    lr: float = 1e-4,
    margin: float = 0.0,
    seed: int = 0,
    device: Any = "cpu",
    progress: bool = True,
) -> GateResult:
    """Probe and quick fine-tune of the learngene vs timm random init at every (depth, width) in ``sizes``.

    ``margin`` (in accuracy, e.g. 0.01) lets the learngene trail random init by that much and still pass; the
    default 0 refuses anything below it. Raises SpecError for a size the learngene cannot serve."""
    from timm.models.vision_transformer import VisionTransformer

    from .api import load_learngene
    from .data import load_dataset
    from .device import resolve_device
    from .materialize import build_model, resolve_spec
    from .probe import linear_probe

    t0 = time.perf_counter()
    lg = load_learngene(learngene, progress=progress)
    dev = resolve_device(device)
    res = GateResult(
        sha256=getattr(lg, "sha256", None),
        name=lg.name,
        dataset=dataset,
        img_size=img_size,
        n_train=n_train,
        n_test=n_test,
        steps=steps,
        margin=margin,
    )
    for depth, width in sizes:
        kw = {"img_size": img_size} if img_size else {}
        spec = resolve_spec(lg, depth, width, num_classes=10, **kw)
        data = lg.cfg.data
        mean = tuple(data.mean) if data.mean is not None else (0.5,)
        std = tuple(data.std) if data.std is not None else (0.5,)
        data_kw = dict(img_size=spec.img_size, in_chans=spec.in_chans, mean=mean, std=std, seed=seed)
        train = load_dataset(dataset, "train", subset=n_train, **data_kw)
        test = load_dataset(dataset, "test", subset=n_test, **data_kw)
        scores = {}
        for kind in ("learngene", "random"):
            torch.manual_seed(seed)
            model = (
                build_model(lg, spec, seed=seed)
                if kind == "learngene"
                else VisionTransformer(**spec.timm_kwargs())
            )
            if kind == "random":
                model.pretrained_cfg = {"mean": mean, "std": std}
            probe = linear_probe(
                model, dataset, n_train=n_train, n_test=n_test, img_size=spec.img_size, seed=seed, device=dev
            )
            torch.manual_seed(seed)
            ft = _finetune(
                model, train, test, steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=dev
            )
            scores[kind] = (probe, ft)
        (p, f), (pr, fr) = scores["learngene"], scores["random"]
        ok = p >= pr - margin and f >= fr - margin
        res.sizes.append(GateSize(depth, width, p, pr, f, fr, ok))
        if progress:
            print(
                f"gate {depth}x{width}: probe {100 * p:.1f} vs random {100 * pr:.1f}, fine-tune {100 * f:.1f} "
                f"vs random {100 * fr:.1f}: {'pass' if ok else 'FAIL'}",
                file=sys.stderr,
            )
    res.seconds = round(time.perf_counter() - t0, 1)
    return res


def write_record(folder: str | os.PathLike, result: GateResult) -> Path:
    """``FOLDER/gate.json``, written atomically (temp file + rename)."""
    path = Path(folder) / RECORD_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_record(folder: str | os.PathLike) -> dict | None:
    path = Path(folder) / RECORD_FILE
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def require_passing(folder: str | os.PathLike, sha256: str) -> dict:
    """The folder's passing gate record for exactly this tensor file, or an ArtifactError saying what to run."""
    rec = read_record(folder)
    fix = f"Run `wavehub gate {folder}` first (or `wavehub push --force` to publish without it)."
    if rec is None:
        raise ArtifactError(f"{folder} has no quality-gate record ({RECORD_FILE})", fix)
    if rec.get("sha256") != sha256:
        raise ArtifactError(f"{folder}/{RECORD_FILE} was measured on a different learngene.safetensors", fix)
    if not rec.get("passed"):
        raise GateFailedError(
            f"{folder} failed the quality gate: it measured below timm's random init",
            "Build a better learngene (more templates, distillation); see gate.json.",
        )
    return rec
