"""Stage 2 of WAVE: fit the size-specific weight scalers on a little labelled data, templates frozen.

The model being trained is a :class:`~wavehub.wave_module.WaveModel`: a stock
timm ViT whose templated weights are recomposed every step from ``Σ_t S_t ⊗ T_t`` with one 2-D GEMM per weight
type for *all* layers, in the autocast dtype (bf16 where the device is fast at it). Only the scalers (and, by
choice, norms / head / pos_embed) receive gradients, so AdamW touches a small fraction of
the model's numbers. The result is composed once into a plain timm ``VisionTransformer`` with a ``wavehub_fit``
record (what was fitted, on how much data, and how well it does on held-out data).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from .errors import DatasetNotFoundError, SpecError
from .fit_config import TRAINABLE, FitConfig
from .schedule import warmup_cosine
from .wave_module import WaveModel

__all__ = [
    "fit_scalers",
    "FitConfig",
    "TRAINABLE",
    "fit_loaders",
    "param_groups",
    "evaluate",
    "channel_index",
    "prepare",
    "update",
    "training_step",
    "num_classes_of",
    "batches",
    "normalization",
    "warmup_cosine",
]

_DEFAULT = FitConfig()


def _group_of(name: str) -> str | None:
    """Which ``train=`` group a non-templated timm parameter belongs to."""
    if name.startswith("head.") or name.startswith("head_"):
        return "head"
    if name in ("pos_embed", "cls_token", "reg_token"):
        return "pos_embed"
    if "norm" in name:
        return "norms"
    return None


def param_groups(
    wm, train: Iterable[str], lr: float | dict[str, float], weight_decay: float
) -> tuple[list[dict], int]:
    """Set ``requires_grad`` by ``train`` and return AdamW groups (one per trained group) and the count.

    ``lr`` may be one number or a dict per group (``{"scalers": 1e-3, "head": 1e-2}``)."""
    train = tuple(train)
    bad = [g for g in train if g not in TRAINABLE]
    if "templates" in bad:
        raise SpecError(
            "templates cannot be trained when fitting scalers (they are shared by every size)",
            "Use `wavehub build` to (re)train templates; fit trains scalers, norms, head, pos_embed.",
        )
    if bad:
        raise SpecError(f"unknown train= group(s) {bad}", f"Choose from {', '.join(TRAINABLE)}.")
    if not train:
        raise SpecError("train= is empty: nothing to fit", "Use e.g. train=('scalers', 'norms', 'head').")
    params: dict[str, list[torch.nn.Parameter]] = {g: [] for g in train}
    for p in wm.templates.values():
        p.requires_grad_(False)
    for p in wm.scalers.values():
        p.requires_grad_("scalers" in train)
        if "scalers" in train:
            params["scalers"].append(p)
    for n, p in wm.extra_parameters().items():
        g = _group_of(n)
        p.requires_grad_(g in train)
        if g in train:
            params[g].append(p)
    lrs = lr if isinstance(lr, dict) else {}
    base = _DEFAULT.lr if isinstance(lr, dict) else float(lr)
    groups = [
        {"params": ps, "lr": float(lrs.get(g, base)), "weight_decay": weight_decay, "name": g}
        for g, ps in params.items()
        if ps
    ]
    return groups, sum(p.numel() for ps in params.values() for p in ps)


def normalization(lg, spec) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The learngene's input mean and std at ``spec`` (what named datasets are normalized with)."""
    from .materialize import pretrained_cfg_for

    pretrained = pretrained_cfg_for(lg, spec)  # timm's pretrained_cfg (its defaults applied), not config.json
    return tuple(pretrained["mean"]), tuple(pretrained["std"])


def _named(data: str | Path) -> bool:
    from .data import DATASETS

    return isinstance(data, (str, Path)) and (str(data) in DATASETS or Path(data).is_dir())


def _load_named(lg, spec, data, split: str, subset, seed: int, augment: bool = False):
    from .data import load_dataset

    mean, std = normalization(lg, spec)
    return load_dataset(
        str(data),
        split,
        img_size=spec.img_size,
        in_chans=spec.in_chans,
        mean=mean,
        std=std,
        subset=subset,
        seed=seed,
        augment=augment,
    )


def _held_out_split(data: str | Path) -> str | None:
    """The split to report accuracy on: ``test`` (named sets; folders with a test/ or val/ sub-folder)."""
    if str(data) in ("fashion-mnist", "mnist", "digits"):
        return "test"
    p = Path(data)
    for s in ("test", "val"):
        if (p / s).is_dir() and (p / "train").is_dir():
            return s
    return None


def fit_loaders(
    lg,
    spec,
    data: Any,
    *,
    batch_size: int,
    seed: int,
    subset=None,
    augment: bool = False,
    eval_data: Any = "auto",
    eval_subset: int | None = 1000,
) -> tuple[DataLoader, DataLoader | None, str]:
    """(train loader, held-out loader or None, a description of the data) for any accepted ``data``."""
    from .data import make_loader

    if isinstance(data, DataLoader):
        train, desc = data, f"DataLoader({type(data.dataset).__name__})"
    elif isinstance(data, Dataset):
        train = make_loader(data, batch_size, shuffle=True, seed=seed, drop_last=len(data) > batch_size)
        desc = type(data).__name__
    elif isinstance(data, (str, Path)):
        if not _named(data):
            raise DatasetNotFoundError(
                f"no dataset or folder named {str(data)!r}",
                "Use fashion-mnist, mnist, digits or an ImageFolder path (root/<class>/<img>).",
            )
        ds = _load_named(lg, spec, data, "train", subset, seed, augment)
        train = make_loader(ds, batch_size, shuffle=True, seed=seed, drop_last=len(ds) > batch_size)
        desc = f"{data} (train, {len(ds)} images)"
    else:
        raise DatasetNotFoundError(
            f"cannot fit on a {type(data).__name__}",
            "Pass a dataset name, a folder path, a torch Dataset or a DataLoader.",
        )
    held = None
    if isinstance(eval_data, str) and eval_data == "auto":
        split = _held_out_split(data) if isinstance(data, (str, Path)) else None
        if split:
            held = make_loader(_load_named(lg, spec, data, split, eval_subset, seed), 256, shuffle=False)
    elif isinstance(eval_data, DataLoader):
        held = eval_data
    elif isinstance(eval_data, Dataset):
        held = make_loader(eval_data, 256, shuffle=False)
    elif isinstance(eval_data, (str, Path)):
        split = _held_out_split(eval_data) or "train"
        held = make_loader(_load_named(lg, spec, eval_data, split, eval_subset, seed), 256, shuffle=False)
    return train, held, desc


def batches(loader: DataLoader, steps: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` batches, cycling through the loader epoch after epoch (reshuffled each time)."""
    done = 0
    while done < steps:
        empty = True
        for batch in loader:
            empty = False
            yield batch[0], torch.as_tensor(batch[1])
            done += 1
            if done >= steps:
                return
        if empty:
            raise DatasetNotFoundError(
                "the training data is empty", "Pass a dataset with at least one batch."
            )


def channel_index(cfg: dict, spec, device=None) -> torch.Tensor:
    """Residual-stream channels of the aux model that the target's channels were selected from."""
    from .config import LearngeneConfig
    from .methods.resample import uniform_indices
    from .methods.wave import wave_block

    view = LearngeneConfig.from_dict(cfg, "wave")
    w = int(wave_block(view).template_size)
    n_src, n_dst = view.aux.width // w, spec.width // w
    blocks = uniform_indices(n_src, n_dst, device)
    return (blocks[:, None] * w + torch.arange(w, device=device)).reshape(-1)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, loader: DataLoader, device: torch.device, amp: torch.dtype | None
) -> float:
    """Top-1 accuracy in [0, 1] of a plain classifier on ``loader``."""
    was = model.training
    model.eval()
    right = total = 0
    ctx = torch.autocast(device.type, dtype=amp) if amp else nullcontext()
    with ctx:
        for x, y in loader:
            pred = model(x.to(device, non_blocking=True)).argmax(-1).cpu()
            right += int((pred == torch.as_tensor(y)).sum())
            total += len(pred)
    model.train(was)
    return right / max(1, total)


def num_classes_of(data: Any) -> int | None:
    ds = data.dataset if isinstance(data, DataLoader) else data
    n = getattr(ds, "num_classes", None)
    if n is None and isinstance(data, (str, Path)):
        from .data import DATASETS

        if str(data) in DATASETS:
            n = DATASETS[str(data)]["num_classes"]
        elif Path(data).is_dir():
            root = Path(data) / "train" if (Path(data) / "train").is_dir() else Path(data)
            n = sum(1 for d in root.iterdir() if d.is_dir()) or None
    return int(n) if n else None


def fit_scalers(
    lg,
    spec,
    data: Any,
    *,
    config: FitConfig | None = None,
    device: Any = None,
    dtype: torch.dtype | None = None,
    eval_data: Any = "auto",
    **options: Any,
):
    """Fit a WAVE learngene's scalers for ``spec`` on ``data``; return a stock timm ``VisionTransformer``.

    ``data``: ``"fashion-mnist"`` | ``"mnist"`` | ``"digits"`` | an ImageFolder path (loaded with the
    learngene's normalization, resized to ``spec.img_size``, ``subset`` = fraction or count, class-balanced),
    a ``torch.utils.data.Dataset`` of ``(image, label)`` or a ``DataLoader``. The options (``steps``,
    ``epochs``, ``lr``, ``train``, ``subset``, ``distill``, ...) are the fields of :class:`FitConfig`, given as
    ``config=`` or as keywords (keywords win); any other keyword goes to the model (``depth_rule``, ...).
    ``train`` picks what learns (any of :data:`TRAINABLE`; templates never). ``distill="aux"`` adds a feature
    loss towards the learngene's own aux model on the channels the target was selected from. ``device=None``
    picks CUDA when present; autocast is bf16/fp16 where the device is fast at it (``precision="fp32"`` to
    force fp32). The model gets a ``wavehub_fit`` dict: images seen, steps, final loss, init, seed and, when a
    held-out split exists, its accuracy.
    """
    cfg, timm_kwargs = FitConfig.from_options(config, **options)
    return _fit(lg, spec, data, cfg, device=device, dtype=dtype, eval_data=eval_data, timm_kwargs=timm_kwargs)


def _fit(
    lg,
    spec,
    data: Any,
    cfg: FitConfig,
    *,
    device: Any,
    dtype: torch.dtype | None,
    eval_data: Any,
    timm_kwargs: dict[str, Any],
):
    from .device import autocast_dtype, resolve_device
    from .methods import get_method

    if not get_method(lg.method).has_scalers:
        raise SpecError(
            f"scaler fitting needs a WAVE learngene; {lg.name!r} is a {lg.method.upper()} learngene",
            "Materialize it without fit= (its weights have no scalers) and fine-tune the model, "
            "or use a WAVE learngene such as dinov2s-learngene.",
        )
    cfg.validate()
    init, seed, train, lr, warmup, distill = cfg.init, cfg.seed, cfg.train, cfg.lr, cfg.warmup, cfg.distill
    dev = resolve_device(device)
    amp = autocast_dtype(dev, cfg.precision)

    n_data = num_classes_of(data)
    if n_data and spec.num_classes == 1000 and n_data != 1000:
        import dataclasses

        spec = dataclasses.replace(
            spec, num_classes=n_data
        )  # the 1000-class default head is never wanted here
    if spec.num_classes == 0:
        raise SpecError(
            "num_classes=0 builds a headless model; scaler fitting trains a classifier",
            "Pass num_classes=<classes in your data>.",
        )
    if n_data and spec.num_classes < n_data:
        raise SpecError(
            f"num_classes={spec.num_classes} but the data has {n_data} classes", f"Pass num_classes={n_data}."
        )

    train_loader, held, desc = fit_loaders(
        lg,
        spec,
        data,
        batch_size=cfg.batch_size,
        seed=seed,
        subset=cfg.subset,
        augment=cfg.augment,
        eval_data=eval_data,
        eval_subset=cfg.eval_subset,
    )
    steps = cfg.steps if cfg.steps is not None else max(1, math.ceil(cfg.epochs * len(train_loader)))

    fork = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=fork):
        torch.manual_seed(seed)
        wm, opt, trained, n_trained = prepare(
            lg,
            spec,
            dev,
            init=init,
            seed=seed,
            train=train,
            lr=lr,
            weight_decay=cfg.weight_decay,
            bank=cfg.bank,
            **timm_kwargs,
        )
        before = {k: v.detach().clone() for k, v in wm.templates.items()}
        teacher = _aux_teacher(lg, spec, dev) if distill == "aux" else None
        idx = channel_index(lg.config, spec, dev) if teacher is not None else None
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(steps, warmup))
        losses: list[float] = []
        seen = 0
        bar = _bar(steps, cfg.progress, desc)
        t0 = time.perf_counter()
        wm.train()
        for x, y in batches(train_loader, steps):
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            if teacher is None:
                loss = training_step(wm, opt, trained, x, y, amp, cfg.clip_grad)
            else:
                loss = _distill_step(
                    wm, teacher, idx, opt, trained, x, y, amp, cfg.clip_grad, cfg.distill_weight
                )
            sched.step()
            seen += len(y)
            losses.append(float(loss))
            if not math.isfinite(losses[-1]):
                from .errors import FitError

                raise FitError(
                    f"the loss became {losses[-1]} at step {len(losses)}",
                    f"Lower the learning rate (lr={lr}) or pass precision='fp32'.",
                )
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}", img_s=f"{seen / (time.perf_counter() - t0):.0f}")
        if bar is not None:
            bar.close()
        seconds = time.perf_counter() - t0
        changed = [k for k, v in wm.templates.items() if not torch.equal(v, before[k])]
        if changed:  # cannot happen with requires_grad=False; a regression here must not ship silently
            from .errors import BuildError

            raise BuildError(
                f"templates {changed} changed during scaler fitting", "Report this as a wavehub bug."
            )
        model = wm.to_timm()
    acc = evaluate(model, held, dev, amp) if held is not None else None
    if dtype is not None:
        model = model.to(dtype)
    tail = losses[-max(1, min(10, len(losses) // 10)) :]
    model.wavehub_fit = {
        "learngene": lg.name,
        "learngene_sha256": lg.sha256,
        "data": desc,
        "init": init,
        "seed": seed,
        "steps": len(losses),
        "images_seen": seen,
        "batch_size": _batch_size(train_loader),
        "first_loss": losses[0],
        "final_loss": sum(tail) / len(tail),
        "train": list(train),
        "loss_curve": [round(v, 4) for v in losses[:: max(1, len(losses) // 50)]],
        "lr": lr,
        "weight_decay": cfg.weight_decay,
        "warmup": warmup,
        "distill": distill,
        "trained_parameters": n_trained,
        "model_parameters": sum(p.numel() for p in model.parameters()),
        "device": str(dev),
        "autocast": str(amp).replace("torch.", "") if amp else "fp32",
        "seconds": round(seconds, 3),
        "images_per_second": round(seen / max(seconds, 1e-9), 1),
        "held_out_accuracy": acc,
        "held_out_images": len(held.dataset) if held is not None else None,
        "templates_unchanged": True,
    }
    if hasattr(model, "wavehub_info"):
        model.wavehub_info = dict(model.wavehub_info) | {"fitted": True, "init": init}
    return model


def prepare(
    lg,
    spec,
    dev: torch.device,
    *,
    init: str = _DEFAULT.init,
    seed: int = _DEFAULT.seed,
    train: Iterable[str] = _DEFAULT.train,
    lr: float | dict[str, float] = _DEFAULT.lr,
    weight_decay: float = _DEFAULT.weight_decay,
    bank: bool | str = _DEFAULT.bank,
    **timm_kwargs: Any,
):
    """The scaler model, its AdamW, the trained tensors and their count (shared with benchmarks/fit_step.py).

    ``bank``: start from the learngene's pre-fitted entry for this size, when it has one."""
    # fp32 master copies whatever the learngene's storage dtype (the bundled one is fp16); autocast does the rest
    wm = WaveModel.from_learngene(
        lg, spec, init=init, seed=seed, device=dev, dtype=torch.float32, bank=bank, **timm_kwargs
    )
    _drop_placeholders(wm)
    groups, n_trained = param_groups(wm, train, lr, weight_decay)
    opt = torch.optim.AdamW(groups, betas=(0.9, 0.999), **_adamw_impl(dev))
    return wm, opt, [p for g in groups for p in g["params"]], n_trained


def training_step(
    model,
    opt: torch.optim.Optimizer,
    params: list[torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    amp: torch.dtype | None,
    clip_grad: float | None,
) -> torch.Tensor:
    """One cross-entropy step (forward under autocast, backward, clip, AdamW); returns the detached loss.

    The same function times the full-parameter baseline in benchmarks/fit_step.py, so the two differ only in
    the model (WaveModel: compose + forward) and in which tensors the optimizer owns."""
    with torch.autocast(x.device.type, dtype=amp) if amp else nullcontext():
        loss = F.cross_entropy(model(x).float(), y)
    return update(loss, opt, params, clip_grad)


def _distill_step(wm, teacher, idx, opt, params, x, y, amp, clip_grad, weight) -> torch.Tensor:
    """CE on the labels + MSE between the target's final tokens and the aux model's, on the shared channels."""
    with torch.autocast(x.device.type, dtype=amp) if amp else nullcontext():
        feats = wm.forward_features(x)
        loss = F.cross_entropy(wm.vit.forward_head(feats).float(), y)
        with torch.no_grad():
            target = teacher.forward_features(x)[..., idx]
        loss = loss + weight * F.mse_loss(feats.float(), target.float())
    return update(loss, opt, params, clip_grad)


def update(loss: torch.Tensor, opt, params, clip_grad: float | None) -> torch.Tensor:
    """Backward, optional gradient clipping and one optimizer step: every training loop's update (the fit's two
    step kinds, the bank fit, the benchmarks' distillation scripts), so they clip and step alike."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip_grad:
        torch.nn.utils.clip_grad_norm_(params, clip_grad, foreach=True)
    opt.step()
    return loss.detach()


def _batch_size(loader: DataLoader) -> int | None:
    return (
        loader.batch_size
        if loader.batch_size is not None
        else getattr(loader.batch_sampler, "batch_size", None)
    )


def _adamw_impl(dev: torch.device) -> dict[str, bool]:
    """fused AdamW where the build has it for this device (one kernel for all params), else foreach."""
    return {"fused": True} if dev.type in ("cuda", "cpu") else {"foreach": True}


def _drop_placeholders(wm) -> None:
    """The timm ViT inside a WaveModel holds composed copies of every templated weight that ``forward``
    replaces anyway; shrink them to 1-element expanded views so fitting does not keep a full model in memory."""
    for name, p in wm.vit.named_parameters():
        if name in wm._templated:
            p.data = p.data.new_zeros(()).expand(p.shape)


def _aux_teacher(lg, spec, dev):
    """The learngene's own aux ViT at the target's resolution, frozen (the distillation target)."""
    from .materialize import build_model, resolve_spec

    aux = resolve_spec(
        lg,
        None,
        None,
        num_classes=0,
        img_size=spec.img_size,
        patch_size=spec.patch_size,
        in_chans=spec.in_chans,
    )
    teacher = build_model(lg, aux, device=dev).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def _bar(total: int, enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"fit scalers on {desc}", unit="step", dynamic_ncols=True, leave=True)
