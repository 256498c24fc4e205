"""Which bank entry should a size off the bank's grid start from? Measure the rule of ``wavehub.bank``.

For each off-grid size, every entry at least as wide is forced in turn (``create_model(..., bank=KEY)``), and the
learngene without its bank too; each model's label-free feature distance to the ancestry (what entries are
fitted to lower, :func:`wavehub.bank_fit.feature_distance`) is measured on held-out natural-image crops. The
rule (``choose_entry``) should pick the lowest, or one close to it.

    python benchmarks/bank_rule.py            # bundled dinov2s-learngene; results/bank_rule.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from wavehub.config import LearngeneConfig

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = ("10x320", "3x128", "5x256", "6x192", "8x256", "10x384", "14x384", "20x384", "12x320", "2x384")


def via_entry(cfg: LearngeneConfig, entry_width: int, width: int) -> torch.Tensor:
    """The ancestry channels a target built from an entry carries: the entry's block selection from the aux
    width, then the target's from the entry's (not the same as selecting from the aux width directly)."""
    from wavehub.methods.resample import uniform_indices
    from wavehub.methods.wave import wave_block

    w = wave_block(cfg).template_size
    blocks = uniform_indices(cfg.aux.width // w, entry_width // w)[
        uniform_indices(entry_width // w, width // w)
    ]
    return (blocks[:, None] * w + torch.arange(w)).reshape(-1)


def main(argv: list[str] | None = None) -> int:
    import wavehub
    from wavehub.ancestry import load_ancestry
    from wavehub.bank import choose_entry, entries, parse_size
    from wavehub.bank_fit import feature_distance, heldout_crops
    from wavehub.fit import channel_index
    from wavehub.materialize import resolve_spec

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--learngene", default="dinov2s-learngene")
    ap.add_argument("--sizes", nargs="+", default=list(SIZES))
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(RESULTS / "bank_rule.json"))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    lg = wavehub.load_learngene(a.learngene, progress=False)
    ents = entries(lg.config)
    if not ents:
        print(f"{a.learngene} has no bank", file=sys.stderr)
        return 1
    img = next(iter(ents.values()))["img_size"]
    teacher = load_ancestry(lg.cfg.ancestry["id"]).model("cpu", img_size=img)
    x = heldout_crops(lg, img, a.images, seed=1)
    rows = []
    for size in a.sizes:
        d, w = parse_size(size)
        spec = resolve_spec(lg, d, w, num_classes=0, img_size=img)
        direct = channel_index(lg.config, spec)
        pick = choose_entry(lg.cfg, d, w, spec.grid)
        cands = [k for k, e in sorted(ents.items()) if e["width"] >= w] + [False]
        dist = {}
        for c in cands:
            m = wavehub.create_model(lg, d, w, num_classes=0, img_size=img, bank=c, progress=False).eval()
            idx = via_entry(lg.cfg, ents[c]["width"], w) if c else direct
            with torch.no_grad():
                dist[str(c) if c else "no bank"] = round(float(feature_distance(m, teacher, x, idx)), 4)
        best = min(dist, key=dist.get)
        chosen = pick.key if pick else "no bank"
        rows.append(
            {
                "size": size,
                "rule": chosen,
                "best": best,
                "distance": dist,
                "rule_vs_best": round(dist[chosen] / dist[best], 3),
                "rule_vs_no_bank": round(dist[chosen] / dist["no bank"], 3),
            }
        )
        print(
            f"{size:>7}: rule {chosen} {dist[chosen]:.3f} | best {best} {dist[best]:.3f} | "
            f"no bank {dist['no bank']:.3f}",
            flush=True,
        )
    out = {
        "learngene": a.learngene,
        "bank_sha256": lg.cfg.bank.sha256,
        "img_size": img,
        "images": a.images,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "rows": rows,
    }
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
