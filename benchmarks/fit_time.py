"""How long one `wavehub fit` step takes on this machine at 56/112/224 px (the numbers in docs/performance.md).

    python benchmarks/fit_time.py                       # 4x192, 6x256, 12x384 at 56/112/224 px, batch 64
    python benchmarks/fit_time.py --sizes 6x256 --px 56

Per configuration: ``wavehub.fit.fit_scalers`` on the bundled learngene and the digits dataset, run for ``a`` and
``b`` steps; (time(b) - time(a)) / (b - a) is the per-step time with setup and evaluation cancelled out. Time is
process CPU time with one torch thread (``--threads 1``), which other jobs on a shared machine do not inflate;
a 2-core machine with 2 threads takes roughly half of it in wall time when idle. Also prints the estimate
`wavehub fit` prints before it starts (for the same thread count). Results: results/fit_time.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _time(lg, spec, steps: int, batch: int) -> float:
    from wavehub.fit import fit_scalers

    t0 = time.process_time()
    fit_scalers(
        lg, spec, "digits", steps=steps, batch_size=batch, eval_subset=64, progress=False, device="cpu"
    )
    return time.process_time() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["4x192", "6x256", "12x384"])
    ap.add_argument("--px", nargs="+", type=int, default=[56, 112, 224])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", nargs=2, type=int, default=[1, 3], metavar=("A", "B"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fit_time.json"))
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import torch

    import wavehub
    from wavehub.cli.fit import estimate_step_seconds
    from wavehub.materialize import resolve_spec

    torch.set_num_threads(a.threads)
    lg = wavehub.load_learngene("dinov2s-learngene")
    rows = []
    for size in a.sizes:
        d, w = (int(v) for v in size.split("x"))
        for px in a.px:
            spec = resolve_spec(lg, d, w, num_classes=10, img_size=px)
            ta, tb = _time(lg, spec, a.steps[0], a.batch), _time(lg, spec, a.steps[1], a.batch)
            step = max(0.0, (tb - ta) / (a.steps[1] - a.steps[0]))
            est = estimate_step_seconds(spec, a.batch, torch.device("cpu"))
            rows.append(
                {
                    "size": size,
                    "img_size": px,
                    "batch": a.batch,
                    "step_cpu_s": round(step, 3),
                    "estimate_s": round(est, 3),
                    "setup_and_eval_cpu_s": round(ta - step * a.steps[0], 2),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    meta = {
        "threads": a.threads,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": "python benchmarks/fit_time.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    Path(a.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
