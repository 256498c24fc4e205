"""Issue 17's curves: probe of the aux size vs templates per type, and vs the publisher's CPU-minutes.

Reads the recorded measurements (results/als_extraction.json, results/multisize.json) and draws
results/knowledge_curves.png; nothing is recomputed.

    python benchmarks/curves17.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
MS = "multisize, templates trained (ALS N=64 start)"


def points() -> dict:
    rows = {r["learngene"]: r for r in json.loads((RESULTS / "als_extraction.json").read_text())["rows"]}
    ms = json.loads((RESULTS / "multisize.json").read_text())["runs"][MS]

    def p(name: str) -> float:
        return 100 * rows[name]["probe"]

    return {
        "by_n": {
            "plain (data-free)": [(16, p("plain N=16")), (64, p("plain N=64"))],
            "RMS-calibrated": [(16, p("RMS-calibrated N=16")), (64, p("RMS-calibrated N=64"))],
            "ALS, damping 0": [
                (16, p("ALS N=16 (damping 0)")),
                (32, p("ALS N=32 (damping 0)")),
                (64, p("ALS N=64 (damping 0)")),
            ],
            "ALS, damping 1": [(16, p("ALS N=16, damping 1"))],
            "ALS N=64 + multi-size": [(64, 100 * ms["probe112_aux_12x384"])],
            "bundled default (plain, N≈190)": [
                (190, p("plain qkv 192/proj 64/fc1 192/fc2 160 (bundled default)"))
            ],
        },
        # publisher's one-time CPU-minutes (one thread, this machine), as recorded in §10
        "by_cost": [
            ("ALS N=16", rows["ALS N=16 (damping 0)"]["extract_s"] / 60, p("ALS N=16 (damping 0)")),
            ("ALS N=64", rows["ALS N=64 (damping 0)"]["extract_s_als_only"] / 60, p("ALS N=64 (damping 0)")),
            (
                "ALS N=64 + multi-size",
                (rows["ALS N=64 (damping 0)"]["extract_s_als_only"] + ms["seconds"]) / 60,
                100 * ms["probe112_aux_12x384"],
            ),
        ],
        "ancestry": p("DINOv2-S ancestry (exact)"),
        "random": p("timm random init"),
    }


def main(argv=None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = points()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, xy in pts["by_n"].items():
        xs, ys = zip(*xy, strict=True)
        a.plot(xs, ys, "o-" if len(xs) > 1 else "s", label=label)
    a.set_xscale("log", base=2)
    a.set_xlabel("templates per type (N)")
    for ax in (a, b):
        ax.axhline(pts["ancestry"], color="k", lw=0.8, ls="--", label="DINOv2-S ancestry")
        ax.axhline(78, color="r", lw=0.8, ls=":", label="issue 17 target (78 %)")
        ax.axhline(pts["random"], color="grey", lw=0.8, ls="-.", label="timm random init")
        ax.set_ylabel("probe at 12x384, 112 px (%)")
    a.set_title("knowledge per stored template")
    a.legend(fontsize=7, loc="lower right")
    for label, x, y in pts["by_cost"]:
        b.plot([x], [y], "o")
        b.annotate(label, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    b.set_xlabel("publisher's CPU-minutes (one thread)")
    b.set_title("knowledge per publisher minute")
    fig.tight_layout()
    out = RESULTS / "knowledge_curves.png"
    fig.savefig(out, dpi=110)
    print(out.relative_to(RESULTS.parent.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
