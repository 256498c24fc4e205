"""Loader fuzz through every stage (issue 15): mutated config.json files and tensor files of tiny WAVE, TLEG and
Weight Selection learngenes go through load_learngene, create_model, save_timm and save_transformers; every
stage either succeeds or raises a ``wavehub.errors`` type. Seeded and deterministic."""

from __future__ import annotations

import copy
import json
import random
import shutil
import traceback

import pytest
import torch
from _tiny import tiny_select, tiny_tleg, tiny_wave

import wavehub
from wavehub import errors
from wavehub.artifact import CONFIG_FILE, TENSOR_FILE, load_learngene, save_learngene, sha256_bytes
from wavehub.export import save_timm, save_transformers

N_CASES = 1000

_VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2,
    3,
    7,
    64,
    2.5,
    0.5,
    1e-300,
    1e308,
    float("nan"),
    float("inf"),
    -float("inf"),
    10**30,
    "",
    "x",
    "bicubic",
    "nearest",
    "lanczos",
    "center",
    "squash",
    "border",
    "token",
    "avg",
    "map",
    "x" * 5000,
    [],
    [0.5],
    [0.5, 0.5, 0.5],
    [0, 0, 0],
    [1, "a", 2],
    ["a"],
    [float("nan")] * 3,
    {},
    {"id": 1},
    {"license": ["x"]},
    {"hf_id": {"a": 1}},
    [[[[1]]]],
]
_OPTIONAL_TOP = [
    "interpolation",
    "crop_pct",
    "crop_mode",
    "mean",
    "std",
    "ancestry",
    "name",
    "repo_id",
    "params",
    "tleg",
    "select",
    "wave",
    "serves",
    "created",
    "license",
]
_FLOAT_DTYPES = [torch.float16, torch.bfloat16, torch.float64]
_BAD_DTYPES = [torch.int64, torch.int8, torch.bool, torch.uint8, torch.complex64]


def _paths(obj, prefix=()):
    """Every (path) to a value in a JSON tree."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    if value is _DELETE:
        del obj[path[-1]]
    else:
        obj[path[-1]] = value


_DELETE = object()


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _mutate_config(rng: random.Random, cfg: dict) -> bytes:
    cfg = copy.deepcopy(cfg)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        op = rng.random()
        paths = [p for p in _paths(cfg) if p]
        if op < 0.3:  # an optional top-level field, added or replaced
            cfg[rng.choice(_OPTIONAL_TOP)] = copy.deepcopy(rng.choice(_VALUES))
        elif op < 0.36:
            _set(cfg, rng.choice(paths), _DELETE)
        elif op < 0.85:
            _set(cfg, rng.choice(paths), copy.deepcopy(rng.choice(_VALUES)))
        else:  # a plausible-looking number nudged
            p = rng.choice([p for p in paths if isinstance(_get(cfg, p), (int, float))] or paths)
            v = _get(cfg, p)
            _set(
                cfg,
                p,
                (v * rng.choice([2, 3, 0.5]) + rng.choice([0, 1, -1]))
                if isinstance(v, (int, float)) and not isinstance(v, bool)
                else rng.choice(_VALUES),
            )
    raw = json.dumps(cfg).encode()
    r = rng.random()
    if r < 0.03:  # nested far past any sane depth, at the top or inside
        raw = (
            (_nested(rng.choice([50, 1000, 100_000]))).encode()
            if r < 0.015
            else raw[:-1] + b', "deep": ' + _nested(rng.choice([40, 5000])).encode() + b"}"
        )
    elif r < 0.05:
        raw = raw[: rng.randrange(len(raw))]
    elif r < 0.06:
        raw = raw[:-1] + b', "big": "' + b"y" * (3 << 20) + b'"}'
    return raw


def _get(obj, path):
    for k in path:
        obj = obj[k]
    return obj


def _mutate_tensors(rng: random.Random, tensors: dict, meta: dict) -> bytes:
    from safetensors.torch import save

    t = {k: v.clone() for k, v in tensors.items()}
    op = rng.random()
    k = rng.choice(sorted(t))
    if op < 0.25:
        t[k] = t[k].to(rng.choice(_BAD_DTYPES + _FLOAT_DTYPES))
    elif op < 0.4:
        t[k] = t[k].clone()
        t[k].view(-1)[rng.randrange(t[k].numel())] = rng.choice([float("nan"), float("inf"), -float("inf")])
    elif op < 0.5:
        t[k] = torch.zeros(*[max(1, s + rng.choice([-1, 1, 0])) for s in t[k].shape])
    elif op < 0.55:
        del t[k]
    elif op < 0.6:
        t["extra." + k] = t[k].clone()
    elif op < 0.65:
        t[k] = t[k].reshape(-1)
    data = bytearray(save(t, metadata=meta if rng.random() > 0.05 else {"format": "x"}))
    op2 = rng.random()
    n = int.from_bytes(data[:8], "little")
    if op2 < 0.2:  # the data section cut short: the header still describes every tensor
        data = data[: rng.randrange(8 + n, len(data))]
    elif op2 < 0.3:  # the header's bytes
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(8, 8 + n)] = rng.randrange(256)
    elif op2 < 0.35:
        data[:8] = rng.randrange(1 << 64).to_bytes(8, "little")
    elif op2 < 0.4:  # the data's bytes (may make NaNs)
        for _ in range(rng.randint(1, 16)):
            data[rng.randrange(8 + n, len(data))] = rng.randrange(256)
    return bytes(data)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    out = []
    for name, lg in (
        ("wave", tiny_wave(templates=1)),
        ("tleg", tiny_tleg()[0]),
        ("select", tiny_select()[0]),
    ):
        d = save_learngene(lg, tmp_path_factory.mktemp(f"src-{name}"))
        loaded = load_learngene(d)
        out.append(
            (json.loads((d / CONFIG_FILE).read_text()), loaded.tensors, (d / TENSOR_FILE).read_bytes())
        )
    return out


def _stages(d, rng: random.Random, outdir):
    lg = load_learngene(d)
    yield "load"
    a = lg.aux
    depth = rng.choice([1, 2, a.get("depth")])
    width = rng.choice([None, a.get("width"), 64])
    model = wavehub.create_model(lg, depth=depth, width=width, num_classes=rng.choice([0, 3, 3]))
    yield "create_model"
    save_timm(model, outdir / "timm")
    yield "save_timm"
    save_transformers(model, outdir / "hf")
    yield "save_transformers"


def test_fuzz_every_stage_raises_only_wavehub_errors(sources, tmp_path):
    """>= 1,000 seeded mutations; the tally shows every stage is reached (not only the loader)."""
    import logging

    logging.getLogger("wavehub.export").setLevel(logging.ERROR)
    threads = torch.get_num_threads()
    torch.set_num_threads(
        1
    )  # tiny tensors: thread start-up would cost more than the work on a shared machine
    try:
        _run(tmp_path, sources)
    finally:
        torch.set_num_threads(threads)


def _run(tmp_path, sources):
    reached = {"load": 0, "create_model": 0, "save_timm": 0, "save_transformers": 0}
    errs: dict[str, int] = {}
    late: dict[str, list] = {}
    bad = []
    for case in range(N_CASES):
        rng = random.Random(case)
        cfg, tensors, tbytes = rng.choice(sources)
        which = rng.choice(["config", "config", "tensor", "both"])
        cbytes = json.dumps(cfg).encode()
        if which in ("tensor", "both"):
            meta = {"format_version": "1", "format": "wavehub.learngene", "method": cfg["method"]}
            tbytes = _mutate_tensors(rng, tensors, meta)
            if rng.random() < 0.9:  # mostly vouched for: integrity passes, the deeper checks must hold
                cbytes = json.dumps(dict(cfg, sha256=sha256_bytes(tbytes))).encode()
        if which in ("config", "both"):
            base = json.loads(cbytes)
            cbytes = _mutate_config(rng, base)
        d = tmp_path / f"c{case}"
        d.mkdir()
        (d / TENSOR_FILE).write_bytes(tbytes)
        (d / CONFIG_FILE).write_bytes(cbytes)
        stage = "load"
        try:
            for done in _stages(d, rng, d):
                reached[done] += 1
                stage = {
                    "load": "create_model",
                    "create_model": "save_timm",
                    "save_timm": "save_transformers",
                }.get(done, "")
        except errors.WavehubError as e:
            errs[type(e).__name__] = errs.get(type(e).__name__, 0) + 1
            if stage != "load":
                late.setdefault(f"{stage}:{type(e).__name__}", []).append(e.message[:100])
        except BaseException as e:  # noqa: BLE001 - the bug this test looks for
            if isinstance(e, KeyboardInterrupt):
                raise
            bad.append(
                (
                    case,
                    which,
                    stage,
                    f"{type(e).__name__}: {str(e)[:160]}",
                    traceback.format_exc().strip().splitlines()[-3:],
                )
            )
        shutil.rmtree(d)
    print(f"reached {reached}; typed errors {errs}")
    for k, v in late.items():
        print(k, len(v), sorted(set(v))[:6])
    assert not bad, f"{len(bad)} of {N_CASES} cases raised untyped errors; first: " + "\n".join(
        f"case {c} ({w}) at {s}: {m} | {tb}" for c, w, s, m, tb in bad[:12]
    )
    assert all(v >= 50 for v in reached.values()), reached  # every stage is exercised, not just the loader
