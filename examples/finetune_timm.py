"""Fine-tune a learngene-initialized ViT on Fashion-MNIST with plain timm.

wavehub is used for one thing only, step 1: materialize a ViT of the size you ask for and write it as a
timm folder. Everything after that is ordinary timm code (``timm.create_model("local-dir:...")``, timm's
data config, transforms, loader, optimizer, scheduler, mixup, EMA): the same folder works with timm's
``train.py --model local-dir:FOLDER --pretrained``, in any script, on a machine without wavehub.

    python examples/finetune_timm.py                      # bundled dinov2s-learngene, depth 4, width 192
    python examples/finetune_timm.py --steps 300 --depth 6 --width 384 --mixup 0.2
    python examples/finetune_timm.py --learngene ./my-learngene     # a learngene folder on disk
    python examples/finetune_timm.py --random-init        # same recipe from random weights, for comparison
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

import timm
import torch
from timm.data import Mixup, create_loader, resolve_data_config
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3, accuracy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fashion_mnist import CLASSES, DEFAULT_DIR, FashionMNIST  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    g = p.add_argument_group("model (step 1, wavehub)")
    g.add_argument(
        "--learngene",
        default="dinov2s-learngene",
        help="zoo name, hf-hub:org/repo, or a local learngene folder",
    )
    g.add_argument("--depth", type=int, default=4)
    g.add_argument("--width", type=int, default=192, help="a multiple of 64 for the bundled learngene")
    g.add_argument("--img-size", type=int, default=56, help="input size (a multiple of the patch size, 14)")
    g.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="skip step 1 and fine-tune this timm folder (e.g. from `wavehub pull ... --out DIR`)",
    )
    g.add_argument(
        "--random-init", action="store_true", help="ignore the weights (baseline: same recipe, random init)"
    )
    g = p.add_argument_group("training (step 2, plain timm)")
    g.add_argument("--steps", type=int, default=100)
    g.add_argument("--batch-size", type=int, default=32)
    g.add_argument("--opt", default="adamw")
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--weight-decay", type=float, default=0.05)
    g.add_argument("--layer-decay", type=float, default=None, help="layer-wise lr decay, e.g. 0.75")
    g.add_argument("--warmup-steps", type=int, default=10)
    g.add_argument("--drop-path", type=float, default=0.0)
    g.add_argument("--smoothing", type=float, default=0.1)
    g.add_argument("--mixup", type=float, default=0.0, help="mixup alpha (0 = off)")
    g.add_argument("--cutmix", type=float, default=0.0, help="cutmix alpha (0 = off)")
    g.add_argument("--ema-decay", type=float, default=0.99, help="0 = no EMA")
    g.add_argument("--amp", action="store_true", help="bfloat16 autocast (fast on CPUs with AMX)")
    g = p.add_argument_group("data")
    g.add_argument("--data-dir", default=DEFAULT_DIR)
    g.add_argument("--train-subset", type=int, default=6400, help="class-balanced training images")
    g.add_argument("--test-subset", type=int, default=1000, help="class-balanced test images")
    g.add_argument("--workers", type=int, default=0)
    g.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        type=Path,
        default=Path("runs/finetune_timm"),
        help="writes OUT/materialized (step 1) and OUT/finetuned (result)",
    )
    return p.parse_args(argv)


def materialize(args) -> Path:
    """Step 1 (the only wavehub code): learngene -> stock timm ViT -> timm folder."""
    import wavehub

    model = wavehub.create_model(
        args.learngene, depth=args.depth, width=args.width, img_size=args.img_size, num_classes=len(CLASSES)
    )
    folder = wavehub.save_timm(model, args.out / "materialized", label_names=CLASSES)
    print(
        f"materialized {args.learngene}: depth {args.depth}, width {args.width}, {args.img_size} px "
        f"-> {folder}"
    )
    return folder


@torch.no_grad()
def evaluate(model, loader, amp: bool) -> float:
    model.eval()
    correct = total = 0
    for x, y in loader:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = model(x)
        correct += accuracy(out.float(), y, topk=(1,))[0].item() * len(y) / 100
        total += len(y)
    return 100 * correct / total


def main(argv=None) -> int:
    sys.stdout.reconfigure(line_buffering=True)
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    folder = args.model_dir or materialize(args)

    # ---- step 2: plain timm from here on ------------------------------------------------------------
    model = timm.create_model(
        f"local-dir:{folder}",
        pretrained=not args.random_init,
        num_classes=len(CLASSES),
        drop_path_rate=args.drop_path,
    )
    data_config = resolve_data_config({}, model=model)  # the learngene's normalization, size, interpolation
    print(
        "data config:",
        {k: data_config[k] for k in ("input_size", "interpolation", "mean", "std", "crop_pct")},
    )

    train_ds = FashionMNIST("train", subset=args.train_subset, seed=args.seed, data_dir=args.data_dir)
    test_ds = FashionMNIST("test", subset=args.test_subset, seed=args.seed, data_dir=args.data_dir)
    common = dict(
        input_size=data_config["input_size"],
        batch_size=args.batch_size,
        use_prefetcher=False,
        interpolation=data_config["interpolation"],
        mean=data_config["mean"],
        std=data_config["std"],
        crop_pct=data_config["crop_pct"],
        crop_mode=data_config["crop_mode"],
        num_workers=args.workers,
        persistent_workers=False,
        device=torch.device("cpu"),
    )
    train_loader = create_loader(
        train_ds, is_training=True, scale=(0.6, 1.0), hflip=0.5, color_jitter=0.0, **common
    )
    test_loader = create_loader(test_ds, is_training=False, **common)

    optimizer = create_optimizer_v2(
        model, opt=args.opt, lr=args.lr, weight_decay=args.weight_decay, layer_decay=args.layer_decay
    )
    scheduler, _ = create_scheduler_v2(
        optimizer,
        sched="cosine",
        num_epochs=args.steps,
        warmup_epochs=args.warmup_steps,
        warmup_lr=args.lr / 100,
        step_on_epochs=False,
        updates_per_epoch=1,
    )
    mixup = (
        Mixup(
            mixup_alpha=args.mixup,
            cutmix_alpha=args.cutmix,
            label_smoothing=args.smoothing,
            num_classes=len(CLASSES),
        )
        if args.mixup > 0 or args.cutmix > 0
        else None
    )
    criterion = SoftTargetCrossEntropy() if mixup else LabelSmoothingCrossEntropy(args.smoothing)
    ema = ModelEmaV3(model, decay=args.ema_decay, use_warmup=True) if args.ema_decay > 0 else None

    print(
        f"step 0: test accuracy {evaluate(model, test_loader, args.amp):.1f}% "
        f"(fresh classifier head, {len(test_ds)} test images)"
    )
    t0, running = time.perf_counter(), []
    batches = itertools.chain.from_iterable(itertools.repeat(train_loader))
    model.train()
    for step, (x, y) in zip(range(1, args.steps + 1), batches, strict=False):
        if mixup:
            x, y = mixup(x, y)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.amp):
            loss = criterion(model(x), y)
        if not math.isfinite(loss.item()):
            raise SystemExit(f"loss is {loss.item()} at step {step}: lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step_update(num_updates=step)
        if ema is not None:
            ema.update(model, step=step)
        running.append(loss.item())
        if step % max(1, args.steps // 5) == 0 or step == args.steps:
            lr = optimizer.param_groups[0]["lr"]
            print(
                f"step {step}/{args.steps}: loss {sum(running) / len(running):.4f}  lr {lr:.2e}  "
                f"{(time.perf_counter() - t0) / step:.2f} s/step"
            )
            running = []

    acc = evaluate(model, test_loader, args.amp)
    line = f"test accuracy: {acc:.1f}%"
    if ema is not None:
        line += f" (EMA {evaluate(ema.module, test_loader, args.amp):.1f}%)"
    print(
        f"{line} on {len(test_ds)} Fashion-MNIST test images after {args.steps} steps "
        f"({'random init' if args.random_init else 'learngene init'})"
    )

    # Saving: wavehub.save_timm writes the same timm folder format as step 1 (stock architecture, complete
    # model_args, num_classes only at top level), which timm, timm's train.py and transformers' TimmWrapper load.
    import wavehub

    out = wavehub.save_timm(model, args.out / "finetuned", label_names=CLASSES)
    print(f"saved fine-tuned model: {out}  (timm.create_model('local-dir:{out}', pretrained=True))")
    return 0


if __name__ == "__main__":
    from wavehub.errors import WavehubError

    try:
        raise SystemExit(main())
    except WavehubError as e:  # wavehub's errors carry a one-line fix: show it instead of a traceback
        raise SystemExit(f"error: {e}") from None
