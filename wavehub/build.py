"""Stage 1: build a learngene by distilling an ancestry into an auxiliary model made of templates.

The aux model has the ancestry's depth and width, and every templated weight is ``Σ_t S_t ⊗ T_t`` (WAVE,
:class:`~wavehub.methods.wave_module.WaveModel` with trainable templates) or ``θ_base + (l/L)·θ_ilayer`` (TLEG).
It learns from the frozen ancestry by feature KD (cosine + relative MSE on the final tokens and a few
intermediate residual streams) and, when the ancestry has a classifier, logit KD (+ CE when the data's labels
are the ancestry's classes). The templates (and aux scalers/extras) become the learngene.

Data parallel through ``torch.distributed`` (gloo on CPU, nccl on GPU) with a manual gradient all-reduce: the
same call under ``torchrun --nproc-per-node N -m wavehub build ...`` gives every rank its slice of each global
batch (see :mod:`wavehub.distill_data`), so N processes reproduce the 1-process run with the same global batch.
Rank 0 writes atomic checkpoints (model, optimizer, scheduler, RNG, step = data position) and the artifact.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .artifact import CARD_FILE, Learngene, atomic_write_bytes, render_card, save_learngene
from .constants import BASE_MODELS
from .errors import BuildError
from .spec import ViTSpec

__all__ = ["BuildConfig", "build_learngene", "TlegModel", "distill_loss", "heldout_loss", "feature_layers", "feature_loss",
           "CHECKPOINT_FILE", "LOG_FILE", "read_checkpoint"]

CHECKPOINT_FILE = "build_checkpoint.safetensors"
LOG_FILE = "build_log.jsonl"
_CKPT_VERSION = 2  # 2: safetensors (tensors) + JSON metadata (everything else); no pickle


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
    steps: int = 1000
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


# --------------------------------------------------------------------------------------------------- models


class TlegModel(nn.Module):
    """TLEG's aux net: ``θ_base``/``θ_ilayer`` per block parameter and shared tensors, all trainable."""

    def __init__(self, vit: nn.Module, tensors: dict[str, torch.Tensor], cfg: dict, spec: ViTSpec):
        super().__init__()
        self.vit, self.cfg, self.spec = vit, cfg, spec
        self.names = sorted(tensors)
        self.params = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(v.detach().clone().float())
                                        for k, v in tensors.items()})
        for n, p in self.vit.named_parameters():
            p.requires_grad_(n.startswith("head"))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {k: self.params[k.replace(".", "__")] for k in self.names}

    def composed(self) -> dict[str, torch.Tensor]:
        from .methods import tleg

        return tleg.compose_state_dict(self.tensors(), self.cfg, self.spec)


def _aux_spec(arch: dict, num_classes: int) -> ViTSpec:
    return ViTSpec(depth=arch["depth"], width=arch["width"], num_heads=arch["num_heads"],
                   head_dim=arch["width"] // arch["num_heads"], mlp_ratio=arch["mlp_ratio"],
                   patch_size=arch["patch_size"], img_size=arch["img_size"], in_chans=arch["in_chans"],
                   num_classes=num_classes, global_pool=arch["global_pool"], class_token=arch["class_token"]).resolve({})


def _initial_learngene(cfg: BuildConfig, anc, arch: dict) -> Learngene:
    """The aux model's starting point: data-free extraction or random, as a (not yet saved) Learngene."""
    from .ancestry import prepared_state as _ancestry_state
    from .extract import parse_templates
    from .methods import get_method, tleg, wave

    g = torch.Generator().manual_seed(cfg.seed)
    lcfg: dict[str, Any] = {"aux": arch}
    if cfg.method == "wave":
        templates = parse_templates(cfg.templates)
        if cfg.init == "extract":
            t, wcfg = wave.extract(_ancestry_state(anc, arch), arch, template_size=cfg.template_size,
                                   templates=templates, bias_templates=cfg.bias_templates)
        else:
            t, wcfg = wave.random_learngene(arch, template_size=cfg.template_size, templates=templates,
                                            bias_templates=cfg.bias_templates, generator=g)
        lcfg["wave"] = wcfg
    elif cfg.method == "tleg":
        lcfg["tleg"] = {"coefficient": "l/L (0-indexed l, L = target depth)",
                        "source": "distillation (wavehub build)"}
        if cfg.init == "extract":
            t = tleg.extract(_ancestry_state(anc, arch), arch)
        else:
            t = {}  # TLEG's own init: linear ~ trunc-normal(0.02), biases 0, LN base 1/0, LN ilayer 0
            for k, shape in tleg.expected_shapes({"aux": arch}).items():
                if "norm" in k and k.endswith("weight"):
                    t[k] = torch.ones(shape) if (".base." in k or k.startswith("shared.")) else torch.zeros(shape)
                elif k.endswith("bias"):
                    t[k] = torch.zeros(shape)
                else:
                    t[k] = torch.nn.init.trunc_normal_(torch.empty(shape), std=0.02, generator=g)
    else:
        raise BuildError(f"unknown build method {cfg.method!r}", "Use --method wave or --method tleg.")
    lcfg["serves"] = get_method(cfg.method).serves(lcfg)
    return Learngene(cfg.method, lcfg, {k: v.float() for k, v in t.items()})


def _make_aux(lg: Learngene, spec: ViTSpec, device: torch.device) -> nn.Module:
    from .materialize import build_model

    if lg.method == "wave":
        from .wave_module import WaveModel

        return WaveModel.from_learngene(lg, spec, init="resample", train_templates=True, device=device)
    vit = build_model(lg, spec, device=device)
    return TlegModel(vit, {k: v.to(device) for k, v in lg.tensors.items()}, lg.config, spec)


def _teacher(spec_str: str, anc, img_size: int, device: torch.device) -> nn.Module:
    """The frozen ancestry at the distillation resolution, with its classifier when it has one."""
    if anc.has_classifier:
        import timm

        name = spec_str
        if os.path.isdir(spec_str):
            name = "local-dir:" + spec_str
        elif spec_str.startswith("timm:"):
            name = spec_str[5:]
        m = timm.create_model(name, pretrained=True)
        head = {k: v.detach().float() for k, v in m.state_dict().items() if k.startswith("head.")}
        anc = dataclasses.replace(anc, state_dict={**anc.state_dict, **head})
    t = anc.model(device, img_size=img_size)
    for p in t.parameters():
        p.requires_grad_(False)
    return t.eval()


# --------------------------------------------------------------------------------------------------- losses


def feature_layers(depth: int) -> list[int]:
    """Intermediate blocks whose residual stream is matched: about 1/4, 1/2 and 3/4 of the depth."""
    return sorted({i for i in (depth // 4 - 1, depth // 2 - 1, 3 * depth // 4 - 1) if 0 <= i < depth - 1})


@dataclass
class _Out:
    tokens: torch.Tensor
    mids: dict[int, torch.Tensor]
    logits: torch.Tensor | None


def _run(vit: nn.Module, params: dict[str, torch.Tensor] | None, x: torch.Tensor, layers: list[int]) -> _Out:
    """Final tokens (after the final norm), chosen block outputs and logits, with ``params`` swapped in."""
    from contextlib import nullcontext

    from torch.nn.utils.stateless import _reparametrize_module

    mids: dict[int, torch.Tensor] = {}
    hooks = [vit.blocks[i].register_forward_hook(lambda _m, _i, out, i=i: mids.__setitem__(i, out)) for i in layers]
    try:
        with _reparametrize_module(vit, params, strict=False) if params else nullcontext():
            tokens = vit.forward_features(x)
            logits = vit.forward_head(tokens) if getattr(vit, "num_classes", 0) else None
    finally:
        for h in hooks:
            h.remove()
    return _Out(tokens, mids, logits)


def feature_loss(a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(1 − cosine) per token + MSE relative to each image's target energy; a per-image mean, so the mean over
    ranks of per-rank losses is the global-batch loss (needed for DDP == 1 process)."""
    a, t = a.float(), t.float()
    cos = 1 - F.cosine_similarity(a, t, dim=-1, eps=1e-6).mean(-1)
    rel = (a - t).pow(2).flatten(1).mean(1) / t.pow(2).flatten(1).mean(1).clamp_min(1e-6)
    return (cos + rel).mean()


def distill_loss(s: _Out, t: _Out, labels: torch.Tensor | None = None, *, mid_weight: float = 0.5,
                 tau: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Feature KD always; logit KD (KL at temperature τ, ×τ²) when both have heads; CE when labels are given.

    With labels the logit terms are ``0.5·CE + 0.5·KD`` (the DeiT/WAVE α = 0.5), without them pure KD (α = 1,
    TLEG's setting)."""
    parts: dict[str, torch.Tensor] = {"feat_final": feature_loss(s.tokens, t.tokens)}
    loss = parts["feat_final"]
    if s.mids:
        mid = torch.stack([feature_loss(s.mids[i], t.mids[i]) for i in sorted(s.mids)]).mean()
        parts["feat_mid"] = mid
        loss = loss + mid_weight * mid
    if s.logits is not None and t.logits is not None:
        kd = F.kl_div(F.log_softmax(s.logits.float() / tau, -1), F.log_softmax(t.logits.float() / tau, -1),
                      reduction="batchmean", log_target=True) * tau * tau
        parts["kd"] = kd
        if labels is not None:
            parts["ce"] = F.cross_entropy(s.logits.float(), labels)
            loss = loss + 0.5 * kd + 0.5 * parts["ce"]
        else:
            loss = loss + kd
    return loss, {k: float(v.detach()) for k, v in parts.items()}


@torch.no_grad()
def heldout_loss(model: nn.Module, teacher: nn.Module, x: torch.Tensor, *, batch_size: int = 32,
                 mid_weight: float = 0.5) -> float:
    """The distillation loss on held-out images (labels ignored): the number distillation must lower."""
    layers = feature_layers(len(teacher.blocks))
    total, n = 0.0, 0
    params = model.composed() if hasattr(model, "composed") else None
    vit = model.vit if hasattr(model, "vit") else model
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        loss, _ = distill_loss(_run(vit, params, xb, layers), _run(teacher, None, xb, layers), mid_weight=mid_weight)
        total += float(loss) * len(xb)
        n += len(xb)
    return total / max(n, 1)


# --------------------------------------------------------------------------------------------------- DDP


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    backend: str | None = None
    owned: bool = False

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()


def _dist_setup(device: str | None) -> tuple[_Dist, torch.device]:
    from .device import resolve_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = resolve_device(device)
    if world <= 1:
        return _Dist(), dev
    import torch.distributed as dist

    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    owned = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        owned = True
    return _Dist(dist.get_rank(), dist.get_world_size(), dist.get_backend(), owned), dev


def _allreduce_grads(params: list[nn.Parameter], world: int) -> None:
    """Average gradients over ranks with one flat all-reduce (every rank holds the same parameters)."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    flat.div_(world)
    off = 0
    for p, g in zip(params, grads, strict=True):
        n = g.numel()
        p.grad = flat[off:off + n].view_as(p).clone()
        off += n


def _allreduce_scalars(d: dict[str, float], world: int) -> dict[str, float]:
    if world <= 1 or not d:
        return d
    keys = sorted(d)
    t = torch.tensor([d[k] for k in keys], dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return {k: float(v) / world for k, v in zip(keys, t.tolist(), strict=True)}


# --------------------------------------------------------------------------------------------------- checkpoints


def _schedule(cfg: BuildConfig):
    warm = cfg.warmup_steps if cfg.warmup_steps is not None else min(100, cfg.steps // 10)

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        p = (step - warm) / max(1, cfg.steps - warm)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))

    return f, warm


def _save_checkpoint(path: Path, state: dict) -> None:
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
    """The state a build checkpoint holds (the inverse of ``_save_checkpoint``); no pickle involved."""
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


def _load_checkpoint(path: Path, cfg: BuildConfig) -> dict:
    try:
        state = read_checkpoint(path)
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file
        raise BuildError(f"checkpoint {path} could not be read ({type(e).__name__})",
                         "Delete it to start over, or point --out at the right folder.") from None
    if state.get("version") != _CKPT_VERSION:
        raise BuildError(f"checkpoint {path} has version {state.get('version')!r}", "Delete it to start over.")
    want, have = cfg.fingerprint(), state.get("config", {})
    diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
    if diff:
        raise BuildError(f"--resume with different settings than the checkpoint: {', '.join(diff)}",
                         "Resume with the original options, or build into a new --out folder.")
    return state


def _hardware(dev: torch.device, dist_: _Dist) -> dict:
    hw = {"device": str(dev.type), "world_size": dist_.world, "backend": dist_.backend or "none",
          "torch": torch.__version__, "threads_per_process": torch.get_num_threads(),
          "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}
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


# --------------------------------------------------------------------------------------------------- export


def _export_tensors(model: nn.Module, method: str, spec: ViTSpec) -> dict[str, torch.Tensor]:
    from .methods.wave import NORM_KEYS, TYPES

    if method == "tleg":
        return {k: v.detach().float().cpu().clone() for k, v in model.tensors().items()}
    t: dict[str, torch.Tensor] = {}
    for name in TYPES:
        t[f"templates.{name}"] = model.templates[name]
        t[f"templates.{name}.bias"] = model.templates[f"{name}_bias"]
        t[f"aux.scalers.{name}"] = model.scalers[name]
        t[f"aux.scalers.{name}.bias"] = model.scalers[f"{name}_bias"]
    vit = model.vit
    for k in NORM_KEYS:
        mod, p = k.split(".")
        t[f"aux.{k}"] = torch.stack([getattr(getattr(b, mod), p) for b in vit.blocks])
    final = getattr(vit, spec.final_norm)
    t["aux.norm.weight"], t["aux.norm.bias"] = final.weight, final.bias
    t["aux.pos_embed"] = vit.pos_embed
    if spec.class_token:
        t["aux.cls_token"] = vit.cls_token
    return {k: v.detach().float().cpu().clone() for k, v in t.items()}


def render_build_card(config: dict) -> str:
    """render_card plus the recipe: what a reader needs to judge and reproduce the learngene."""
    r = config["recipe"]
    lines = [render_card(config).rstrip(), "", "## How it was built", "",
             f"Distilled with `wavehub build` ({r['method']}, init `{r['init']}`) from `{r['ancestry']}`.", "",
             "| | |", "|---|---|"]
    rows = [("data", r["data"]), ("image size", f"{r['img_size']} px"), ("steps", r["steps"]),
            ("global batch", r["batch_size"]), ("images seen", f"{r['images_seen']:,}"),
            ("optimizer", f"AdamW lr {r['lr']} (cosine, {r['warmup_steps']} warmup steps), wd {r['weight_decay']}"),
            ("losses", r["losses"]), ("loss first → last", f"{r['loss_first']:.4f} → {r['loss_last']:.4f}"),
            ("held-out KD loss before → after",
             f"{r['heldout_before']:.4f} → {r['heldout_after']:.4f}" if r.get("heldout_after") is not None else "n/a"),
            ("wall time", f"{r['wall_time_s']:.0f} s ({r['img_per_s']:.1f} img/s)"),
            ("hardware", f"{r['hardware'].get('cpu')} / {r['hardware'].get('gpu', 'no GPU')}, "
                         f"{r['hardware']['world_size']} process(es), backend {r['hardware']['backend']}")]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "Reproduce:", "", "```bash", r["command"], "```", ""]
    return "\n".join(lines)


def _command(cfg: BuildConfig, world: int) -> str:
    pre = f"torchrun --nproc-per-node {world} -m wavehub build" if world > 1 else "wavehub build"
    return (f"{pre} --ancestry {cfg.ancestry} --method {cfg.method} --data {cfg.data} --init {cfg.init} "
            f"--template-size {cfg.template_size} --templates {cfg.templates} --steps {cfg.steps} "
            f"--batch-size {cfg.batch_size} --lr {cfg.lr} --img-size {cfg.img_size} --seed {cfg.seed} --out OUT")


# --------------------------------------------------------------------------------------------------- main


def build_learngene(ancestry: str, method: str = "wave", data: str = "natural", out: str | os.PathLike = "learngene",
                    *, init: str = "extract", template_size: int = 64, templates: Any = 16,
                    bias_templates: int | None = None, steps: int | None = None, epochs: float | None = None,
                    batch_size: int = 32, lr: float = 5e-4, weight_decay: float = 0.0,
                    warmup_steps: int | None = None, img_size: int = 112, seed: int = 0, resume: bool = False,
                    checkpoint_every: int = 100, max_steps_this_run: int | None = None, device: Any = None,
                    precision: str = "fp32", storage_dtype: str = "float32", name: str | None = None,
                    holdout: int = 64, progress: bool = True, log_every: int = 1, force: bool = False) -> Path | None:
    """Distill ``ancestry`` into a WAVE (or TLEG) learngene written to ``out``; returns ``out`` on rank 0
    (``None`` on other ranks, and when ``max_steps_this_run`` stops the run early after checkpointing).

    ``data``: ``natural`` (shipped sample photographs) or a dataset's train split (``fashion-mnist``, ...).
    ``epochs`` (dataset data only) sets ``steps = ceil(epochs · len(train) / batch_size)``.
    """
    from . import outdir
    from .ancestry import load_ancestry
    from .device import STORAGE_DTYPES, autocast_dtype, parse_dtype
    from .distill_data import make_stream
    from .extract import ancestry_arch
    from .stages import Stages

    if init not in ("extract", "random"):
        raise BuildError(f"unknown --init {init!r}", "Use --init extract or --init random.")
    storage = parse_dtype(storage_dtype, allowed=STORAGE_DTYPES, what="storage_dtype")
    out = Path(out)
    outdir.check(out, "build", force=force)  # before loading the ancestry, not after the training
    dist_, dev = _dist_setup(device)
    setup = Stages(f"build {method} set-up", 6, enabled=progress and dist_.rank == 0)
    try:
        setup("load ancestry")
        anc = load_ancestry(ancestry)
        arch = ancestry_arch(anc.model_args, img_size)
        setup(f"load data ({data})")
        stream = make_stream(data, img_size=img_size, mean=anc.mean, std=anc.std, seed=seed,
                             in_chans=arch["in_chans"])
        if steps is None:
            if epochs is None:
                steps = 1000
            elif stream.labels is None:
                raise BuildError("--epochs needs a dataset; the 'natural' stream is endless", "Pass --steps N.")
            else:
                steps = max(1, math.ceil(epochs * len(stream.images) / batch_size))
        if steps < 1 or batch_size < 1 or batch_size % dist_.world:
            raise BuildError(f"batch_size {batch_size} must be >= 1 and divisible by the {dist_.world} processes "
                             f"(steps {steps} >= 1)", f"Use --batch-size {max(1, batch_size // dist_.world) * dist_.world}.")
        cfg = BuildConfig(ancestry=ancestry, method=method, data=data, init=init, template_size=template_size,
                          templates=templates, bias_templates=bias_templates, steps=steps, batch_size=batch_size,
                          lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps, img_size=img_size, seed=seed,
                          precision=precision)
        return _train(cfg, anc, arch, stream, out, dist_, dev, resume=resume, checkpoint_every=checkpoint_every,
                      max_steps_this_run=max_steps_this_run, storage_dtype=storage,
                      storage_name=storage_dtype, name=name, holdout=holdout, progress=progress,
                      log_every=log_every, amp=autocast_dtype(dev, precision), setup=setup)
    except BaseException:
        setup.close(ok=False)
        raise
    finally:
        if dist_.owned:
            torch.distributed.destroy_process_group()


def _train(cfg: BuildConfig, anc, arch: dict, stream, out: Path, dist_: _Dist, dev: torch.device, *, resume: bool,
           checkpoint_every: int, max_steps_this_run: int | None, storage_dtype, storage_name: str,
           name: str | None, holdout: int, progress: bool, log_every: int, amp, setup=None) -> Path | None:
    setup = setup or (lambda _name: None)
    torch.manual_seed(cfg.seed)
    setup("teacher")
    teacher = _teacher(cfg.ancestry, anc, cfg.img_size, dev)
    num_classes = getattr(teacher, "num_classes", 0)
    spec = _aux_spec(arch, num_classes)
    setup("initial learngene (extraction)" if cfg.init == "extract" else "initial learngene (random)")
    lg0 = _initial_learngene(cfg, anc, arch)
    setup("aux model")
    model = _make_aux(lg0, spec, dev)
    if num_classes:  # start the aux head from the ancestry's (it is trained, then dropped: heads are per-task)
        with torch.no_grad():
            model.vit.head.weight.copy_(teacher.head.weight)
            model.vit.head.bias.copy_(teacher.head.bias)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    lam, warm = _schedule(cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
    use_labels = stream.labels is not None and num_classes > 0 and num_classes == int(stream.labels.max()) + 1
    layers = feature_layers(arch["depth"])

    ckpt_path, log_path = out / CHECKPOINT_FILE, out / LOG_FILE
    start, images_seen, elapsed, summary = 0, 0, 0.0, {}
    if ckpt_path.is_file() and not resume:
        raise BuildError(f"{out} holds a build checkpoint", "Pass --resume to continue it, or use another --out.")
    xh = stream.batch(-1, 0, holdout)[0].to(dev) if holdout and dist_.rank == 0 else None  # step -1: never trained on
    if resume and ckpt_path.is_file():
        state = _load_checkpoint(ckpt_path, cfg)
        model.load_state_dict(state["model"], strict=False)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        start, images_seen, elapsed, summary = state["step"], state["images_seen"], state["elapsed"], state["summary"]
        if dist_.rank == 0 and log_path.is_file():  # drop log lines past the checkpoint (they will be redone)
            keep = [ln for ln in log_path.read_text().splitlines() if ln and json.loads(ln)["step"] <= start]
            atomic_write_bytes(log_path, ("\n".join(keep) + "\n" if keep else "").encode())
    elif dist_.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if log_path.exists():
            log_path.unlink()
        if xh is not None:
            setup("held-out loss before training")
            summary["heldout_before"] = heldout_loss(model, teacher, xh)
    if hasattr(setup, "close"):
        setup.close()
    dist_.barrier()

    local = cfg.batch_size // dist_.world
    lo = dist_.rank * local
    end = cfg.steps if max_steps_this_run is None else min(cfg.steps, start + max_steps_this_run)
    bar = None
    if progress and dist_.rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=start, desc=f"build {cfg.method}", unit="step", dynamic_ncols=True)
    log = open(log_path, "a") if dist_.rank == 0 else None
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    t0 = time.perf_counter()
    try:
        model.train()
        for step in range(start, end):
            x, y = stream.batch(step, lo, lo + local)
            x = x.to(dev, non_blocking=True)
            y = y.to(dev) if (use_labels and y is not None) else None
            with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
                with torch.no_grad():
                    t_out = _run(teacher, None, x, layers)
                s_out = _run(model.vit, model.composed(), x, layers)
                loss, parts = distill_loss(s_out, t_out, y, mid_weight=cfg.feature_weight_mid, tau=cfg.kd_temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if dist_.world > 1:
                _allreduce_grads(params, dist_.world)
            if cfg.clip_grad:
                torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad)
            opt.step()
            sched.step()
            images_seen += cfg.batch_size
            parts = _allreduce_scalars({"loss": float(loss.detach()), **parts}, dist_.world)
            summary.setdefault("loss_first", parts["loss"])
            summary.setdefault("recent", []).append(parts["loss"])
            summary["recent"] = summary["recent"][-20:]
            if log is not None and ((step + 1) % log_every == 0 or step + 1 == cfg.steps):
                now = elapsed + time.perf_counter() - t0
                log.write(json.dumps({"step": step + 1, **{k: round(v, 6) for k, v in parts.items()},
                                      "lr": sched.get_last_lr()[0], "images": images_seen,
                                      "elapsed_s": round(now, 2)}) + "\n")
                log.flush()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{parts['loss']:.4f}")
            done = step + 1
            if (checkpoint_every and done % checkpoint_every == 0) or done == end:
                if dist_.rank == 0:
                    _save_checkpoint(ckpt_path, {
                        "version": _CKPT_VERSION, "config": cfg.fingerprint(), "step": done,
                        "model": {k: v for k, v in model.state_dict().items() if k in trainable},
                        "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                        "rng": torch.get_rng_state(), "images_seen": images_seen,
                        "elapsed": elapsed + time.perf_counter() - t0, "summary": summary,
                        "world_size": dist_.world})
                dist_.barrier()
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()
    elapsed += time.perf_counter() - t0
    if end < cfg.steps or dist_.rank != 0:
        return None

    model.eval()
    if xh is not None:
        summary["heldout_after"] = heldout_loss(model, teacher, xh)
    tensors = {k: v.to(storage_dtype) for k, v in _export_tensors(model, cfg.method, spec).items()}
    recent = summary.get("recent") or [float("nan")]
    recipe = {
        "kind": "distill", "method": cfg.method, "init": cfg.init, "ancestry": cfg.ancestry,
        "data": stream.description, "data_spec": cfg.data, "img_size": cfg.img_size, "steps": cfg.steps,
        "batch_size": cfg.batch_size, "images_seen": images_seen, "lr": cfg.lr, "weight_decay": cfg.weight_decay,
        "warmup_steps": warm, "schedule": f"linear warmup + cosine to {cfg.min_lr_ratio}×lr",
        "clip_grad": cfg.clip_grad, "seed": cfg.seed, "precision": cfg.precision, "storage_dtype": storage_name,
        "losses": ("feature KD: (1-cos) + relative MSE on final tokens + "
                   f"{cfg.feature_weight_mid}× mean over blocks {layers}"
                   + (f"; logit KD (KL, τ={cfg.kd_temperature:g})" if num_classes else "")
                   + ("; 0.5·CE + 0.5·KD" if use_labels else "")),
        "loss_first": summary.get("loss_first", float("nan")), "loss_last": sum(recent) / len(recent),
        "heldout_before": summary.get("heldout_before"), "heldout_after": summary.get("heldout_after"),
        "heldout_images": holdout, "wall_time_s": round(elapsed, 1),
        "img_per_s": round(images_seen / elapsed, 2) if elapsed else None,
        "hardware": _hardware(dev, dist_), "command": _command(cfg, dist_.world),
    }
    lcfg = dict(lg0.config)
    lcfg.update({
        "name": name or f"{cfg.method}-distilled", "mean": list(anc.mean), "std": list(anc.std),
        "interpolation": "bicubic", "crop_pct": 1.0,
        "ancestry": {"id": anc.name, "revision": anc.revision, "license": anc.license,
                     "hf_id": BASE_MODELS.get(anc.name),
                     "params": sum(v.numel() for v in anc.state_dict.values())},
        "recipe": recipe,
    })
    lg = Learngene(cfg.method, lcfg, tensors)
    save_learngene(lg, out, kind="build", force=True)  # checked at the start; the folder is this build's now
    atomic_write_bytes(out / CARD_FILE, render_build_card(lg.config).encode("utf-8"))  # now with the sha256
    return out
