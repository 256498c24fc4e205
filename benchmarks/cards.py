"""Regenerate the zoo's model cards and the README's zoo table from the artifacts and the measured results.

    python benchmarks/cards.py            # rewrite model_cards/*.md and README.md's zoo table
    python benchmarks/cards.py --check    # exit 1 (and show what differs) if anything is out of date

What it writes, per card (``model_cards/<name>.md``):
- front matter from the artifact where the weights are here (bundled): sha256 of ``learngene.safetensors``,
  parameter count, template counts per weight type, sizes served. Recipes and published entries keep what their
  card says (a published entry's artifact is on the Hub, checked on download against the card's sha256);
- the measured quality table, between ``<!-- measured:begin -->`` and ``<!-- measured:end -->``: every size
  and dataset of ``benchmarks/results/quality_summary.json`` for the card's ``wavehub.measured_as`` init, next
  to timm's random init (frozen-feature probe and the 30-step fine-tune, mean ± std over seeds), and the
  command that produced it. Re-run this script whenever those results or the artifact change.

And the README's zoo table, between ``<!-- zoo:begin -->`` and ``<!-- zoo:end -->``, from the same cards
(``wavehub list`` reads them too, so the two cannot disagree once this has run).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CARDS = ROOT / "model_cards"
BUNDLED = ROOT / "wavehub" / "_bundled"
README = ROOT / "README.md"
SUMMARY = ROOT / "benchmarks" / "results" / "quality_summary.json"
QUALITY_COMMAND = "python benchmarks/quality.py --jobs 2 && python benchmarks/quality.py --report"
MEASURED = ("<!-- measured:begin -->", "<!-- measured:end -->")
BANK_MARKS = ("<!-- bank:begin -->", "<!-- bank:end -->")
BANK_SUMMARY = ROOT / "benchmarks" / "results" / "quality_bank_summary.json"
BANK_COMMAND = (
    "python benchmarks/quality.py --tag bank --no-probes --inits wave-bank wave random --sizes 4x192 "
    "8x384 10x320 --seeds 3 && python benchmarks/quality.py --report --tag bank --no-probes --inits "
    "random wave wave-bank --sizes 4x192 8x384 10x320 --seeds 3"
)

ZOO = ("<!-- zoo:begin -->", "<!-- zoo:end -->")

__all__ = ["artifact_facts", "measured_table", "render_card", "zoo_table", "main"]


def artifact_facts(folder: Path) -> dict:
    """What a card's front matter must say about an artifact on disk: sha256, params, templates, sizes."""
    from safetensors import safe_open

    from wavehub.artifact import read_config, sha256_file
    from wavehub.methods.wave import wave_block

    cfg = read_config(folder)
    with safe_open(str(folder / "learngene.safetensors"), "pt") as f:
        params = sum(_numel(f.get_slice(k).get_shape()) for k in f.keys())
    facts = {"sha256": sha256_file(folder / "learngene.safetensors"), "params": params}
    if cfg.method == "wave":
        wb = wave_block(cfg)
        facts["templates"] = {k: int(v.n) for k, v in wb.types.items()}
        facts["template_size"] = int(wb.template_size)
    if (
        cfg.bank and cfg.bank.entries
    ):  # format v2: the sizes pre-fitted by the publisher, and what they cost to ship
        es = sorted(cfg.bank.entries.values(), key=lambda e: (e.width, e.depth))
        facts["bank"] = {
            "sizes": [f"{e.depth}x{e.width}" for e in es],
            "img_size": sorted({int(e.img_size) for e in es}),
            "bytes": sum(int(e.record.get("bytes", 0)) for e in es),
            "sha256": cfg.bank.sha256,
        }
    serves = cfg.serves
    if serves.get("widths"):
        facts["widths"] = str(serves["widths"])
    if serves.get("depths"):
        facts["depths"] = str(serves["depths"])
    return facts


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _cell(xs: list[float]) -> str:
    if not xs:
        return "–"
    m = 100 * statistics.fmean(xs)
    return f"{m:.1f} ± {100 * statistics.stdev(xs):.1f}" if len(xs) > 1 else f"{m:.1f}"


def measured_table(init: str | None, params: int | None, summary: dict | None) -> str:
    """The card's quality section: probe and fine-tune vs random init at every measured size."""
    if not init:
        return (
            "Not measured: no weights exist yet. A build must pass the quality gate (`wavehub gate FOLDER`: "
            "probe and a quick fine-tune vs timm's random init) before `wavehub push` publishes it."
        )
    if summary is None:
        return f"Not measured yet: run `{QUALITY_COMMAND}`, then `python benchmarks/cards.py`."
    rows = summary["summary"]
    r = summary["recipe"]
    fitted = init == "wave" and any(k.endswith("|wave-fit") for k in rows)
    head = ["dataset", "size", "params", "probe", "probe, random init", "fine-tune", "fine-tune, random init"]
    if fitted:
        head.append(f"fit {r.get('fit_steps')} steps + fine-tune")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keys = sorted(
        {tuple(k.split("|")[:2]) for k in rows},
        key=lambda k: (k[0], int(k[1].split("x")[0]), int(k[1].split("x")[1])),
    )
    for ds, size in keys:
        me, rnd = rows.get(f"{ds}|{size}|{init}"), rows.get(f"{ds}|{size}|random")
        if me is None or rnd is None:
            continue
        if me.get("na"):
            cells = [ds, size, f"{me.get('params') or 0:,}", f"n/a — {me['na']}", "", "", ""]
            cells += [""] if fitted else []
        else:
            cells = [
                ds,
                size,
                f"{me.get('params') or 0:,}",
                _cell(me.get("probe") or []),
                _cell(rnd.get("probe") or []),
                _cell(me.get("final") or []),
                _cell(rnd.get("final") or []),
            ]
            if fitted:
                cells.append(_cell((rows.get(f"{ds}|{size}|wave-fit") or {}).get("final") or []))
        out.append("| " + " | ".join(cells) + " |")
    measured_params = (summary.get("learngene_params") or {}).get(init)
    note = ""
    if params and measured_params and measured_params != params:
        note = (
            f"\n\n**Measured on a different artifact** ({measured_params:,} parameters, this one has "
            f"{params:,}): re-run the benchmark."
        )
    recipe = (
        f"Test accuracy % (mean ± std over seeds), {r.get('img_size')} px, {r.get('n_train')} training "
        f"images; probe = logistic regression on frozen pre-logit features ({r.get('probe_test')} test "
        f"images); fine-tune = {r.get('steps')} AdamW steps of batch {r.get('batch')}, lr {r.get('lr')} "
        f"({r.get('final_test')} test images). Produced by `{QUALITY_COMMAND}` "
        f"(`benchmarks/results/quality_summary.json`, analysis in benchmarks/README.md §7 of the wavehub "
        f"repository); this section by `python benchmarks/cards.py`."
    )
    return "\n".join(out) + "\n\n" + recipe + note


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def bank_table(summary: dict | None, grid: set[str]) -> str:
    """The bank's measured effect: the default path (with its bank) vs the same learngene without it vs timm
    random init, same fine-tune for every init, from ``results/quality_bank_summary.json``."""
    if summary is None:
        return f"Not measured yet: run `{BANK_COMMAND}`, then `python benchmarks/cards.py`."
    rows, r = summary["summary"], summary["recipe"]
    out = [
        "| dataset | size | default (bank) | no bank | random init | bank entry used |",
        "|---|---|---|---|---|---|",
    ]
    keys = sorted(
        {tuple(k.split("|")[:2]) for k in rows},
        key=lambda k: (k[0], int(k[1].split("x")[1]), int(k[1].split("x")[0])),
    )
    for ds, size in keys:
        cells = [
            (rows.get(f"{ds}|{size}|{i}") or {}).get("final") or [] for i in ("wave-bank", "wave", "random")
        ]
        if not any(cells):
            continue
        used = "exact" if size in grid else "nearest (off the grid)"
        out.append(f"| {ds} | {size} | " + " | ".join(_cell(c) for c in cells) + f" | {used} |")
    recipe = (
        f"Test accuracy % on the full test sets (mean ± std over seeds) after {r.get('steps')} AdamW steps "
        f"of batch {r.get('batch')} at {r.get('img_size')} px, every init alike. Produced by "
        f"`{BANK_COMMAND}` (`benchmarks/results/quality_bank_summary.json`, benchmarks/README.md §9); this "
        "section by `python benchmarks/cards.py`."
    )
    return "\n".join(out) + "\n\n" + recipe


def _between(body: str, marks: tuple[str, str], text: str) -> str:
    start, end = marks
    if start in body and end in body:
        pre, rest = body.split(start, 1)
        body = pre + start + "\n" + text + "\n" + end + rest.split(end, 1)[1]
    return body


def render_card(path: Path, summary: dict | None) -> str:
    import yaml

    from wavehub.zoo import parse_card

    meta, body = parse_card(path.read_text(encoding="utf-8"))
    w = meta["wavehub"]
    if w.get("status") == "bundled" and (BUNDLED / w["name"] / "learngene.safetensors").is_file():
        w.update(artifact_facts(BUNDLED / w["name"]))
    body = _between(body, MEASURED, measured_table(w.get("measured_as"), w.get("params"), summary))
    if w.get("bank"):
        body = _between(body, BANK_MARKS, bank_table(_read(BANK_SUMMARY), set(w["bank"]["sizes"])))
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=110)
    return f"---\n{front}---{body}"


def zoo_table() -> str:
    from wavehub.zoo import list_entries

    out = ["| name | status | method | ancestry | sizes served |", "|---|---|---|---|---|"]
    for e in list_entries():
        status = (
            f"published: `{e.repo_id}@{e.revision}`"
            if e.status == "published"
            else ("bundled (offline)" if e.status == "bundled" else "unpublished recipe")
        )
        card = f"[`{e.name}`](model_cards/{e.card_path.name})"
        out.append(
            f"| {card} | {status} | {e.method} | `{e.ancestry}` | depth {e.depths}, width {e.widths} |"
        )
    return "\n".join(out)


def render_readme(text: str) -> str:
    start, end = ZOO
    if start not in text or end not in text:
        raise SystemExit(f"README.md has no {start} ... {end} markers")
    pre, rest = text.split(start, 1)
    return pre + start + "\n" + zoo_table() + "\n" + end + rest.split(end, 1)[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a card or README is stale"
    )
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.environ.pop("WAVEHUB_ZOO", None)  # the package's own zoo only
    summary = json.loads(SUMMARY.read_text(encoding="utf-8")) if SUMMARY.is_file() else None
    todo = [(p, render_card(p, summary)) for p in sorted(CARDS.glob("*.md"))]
    todo.append((README, render_readme(README.read_text(encoding="utf-8"))))
    stale = 0
    for path, new in todo:
        old = path.read_text(encoding="utf-8")
        if old == new:
            continue
        stale += 1
        if a.check:
            sys.stdout.writelines(
                difflib.unified_diff(
                    old.splitlines(True),
                    new.splitlines(True),
                    str(path.relative_to(ROOT)),
                    "regenerated",
                    n=1,
                )
            )
        else:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(new, encoding="utf-8")
            tmp.replace(path)
            print(f"wrote {path.relative_to(ROOT)}")
    if a.check and stale:
        print(f"\n{stale} file(s) out of date: run `python benchmarks/cards.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
