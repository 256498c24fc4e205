"""Behaviour-preservation check: weights from this tree vs a reference commit, bit for bit, on this machine.

A refactor must not change what users get. This materializes the bundled learngene at (8, 384), (12, 768) and
(4, 192) (bank on, the default path, and bank off), exports each with ``save_timm`` and fits a 4x192 target's
scalers for a few steps on Fashion-MNIST, once with this tree and once with the reference commit (checked out
into a temporary ``git worktree``), each in its own process, and compares sha256 digests of every tensor.
Both sides run on the same machine, so BLAS differences between CPUs cannot cause a false alarm.

    python benchmarks/identical.py                 # against REFERENCE (main before the redesign)
    python benchmarks/identical.py --base HEAD~3   # against any commit
    python benchmarks/identical.py --only-fit      # skip materialization (a deliberate change elsewhere)

Exit status 0 when every digest matches, 1 otherwise (the differing tensors are listed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "4598704"  # main before the issue-19 redesign
SIZES = ((8, 384), (12, 768), (4, 192))

# Runs inside the child process with the tree under test first on sys.path; prints one JSON object.
_CHILD = r"""
import hashlib, json, sys, tempfile
import torch
import wavehub

def digest(sd):
    out = {}
    for k in sorted(sd):
        t = sd[k].detach().to("cpu").contiguous()
        h = hashlib.sha256(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        out[k] = h.hexdigest()[:16]
    return out

from safetensors.torch import load_file
sizes, do_mat, do_fit = json.loads(sys.argv[1]), sys.argv[2] == "1", sys.argv[3] == "1"
res = {"wavehub_file": wavehub.__file__}
torch.set_num_threads(1)
if do_mat:
    for d, w in sizes:
        for bank in (True, False):
            torch.manual_seed(0)
            m = wavehub.create_model("dinov2s-learngene", depth=d, width=w, num_classes=10, bank=bank)
            res[f"materialize:{d}x{w}:bank={bank}"] = digest(m.state_dict())
            if bank:
                with tempfile.TemporaryDirectory() as tmp:
                    folder = wavehub.save_timm(m, tmp + "/out")
                    res[f"export:{d}x{w}"] = digest(load_file(str(folder) + "/model.safetensors"))
            del m
if do_fit:
    torch.manual_seed(0)
    m = wavehub.create_model("dinov2s-learngene", depth=4, width=192, num_classes=10, img_size=28,
                             fit="fashion-mnist", fit_options=dict(steps=4, batch_size=8, subset=64,
                             eval_data=None, precision="fp32", progress=False), device="cpu")
    res["fit:4x192"] = digest(m.state_dict())
print("RESULT " + json.dumps(res))
"""


def run(tree: Path, *, mat: bool, fit: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(SIZES), str(int(mat)), str(int(fit))],
        cwd=tempfile.gettempdir(),
        env=env,
        capture_output=True,
        text=True,
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if out.returncode or line is None:
        sys.exit(f"the run with {tree} failed:\n{out.stderr[-3000:]}")
    res = json.loads(line[len("RESULT ") :])
    if not Path(res.pop("wavehub_file")).resolve().is_relative_to(tree.resolve()):
        sys.exit(f"the run with {tree} imported wavehub from elsewhere")
    return res


def compare(base: dict, new: dict) -> list[str]:
    diffs = []
    for case in sorted(set(base) | set(new)):
        a, b = base.get(case), new.get(case)
        if a is None or b is None:
            diffs.append(f"{case}: only in {'the reference' if b is None else 'this tree'}")
            continue
        bad = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        if bad:
            diffs.append(f"{case}: {len(bad)} of {len(a)} tensors differ ({', '.join(bad[:4])}...)")
    return diffs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=REFERENCE, help="reference commit (default: %(default)s)")
    ap.add_argument("--only-fit", action="store_true")
    ap.add_argument("--no-fit", action="store_true")
    ap.add_argument("--out", default=None, help="write both digests and the verdict as JSON here")
    a = ap.parse_args(argv)
    mat, fit = not a.only_fit, not a.no_fit
    with tempfile.TemporaryDirectory() as tmp:
        wt = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt), a.base],
            check=True,
            capture_output=True,
        )
        try:
            base = run(wt, mat=mat, fit=fit)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)], capture_output=True
            )
    new = run(ROOT, mat=mat, fit=fit)
    diffs = compare(base, new)
    if a.out:
        Path(a.out).write_text(
            json.dumps(
                {"base": a.base, "identical": not diffs, "diffs": diffs, "cases": sorted(new)}, indent=1
            )
            + "\n"
        )
    for d in diffs:
        print("DIFFERS", d)
    print(
        f"{len(new)} cases, {sum(len(v) for v in new.values())} tensors: "
        + ("bit-identical to " + a.base if not diffs else f"{len(diffs)} cases differ from {a.base}")
    )
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
