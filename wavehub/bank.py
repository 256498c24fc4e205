"""A learngene's bank: scalers (and norms, pos_embed, cls_token) pre-fitted once per size by the publisher.

Stage 2 of WAVE trains only the size-specific scalers. A bank serves that stage to every user: for each size in
it, the publisher fitted the scalers label-free (feature distillation from the ancestry on unlabeled crops,
templates frozen, ``wavehub bank add``), so ``create_model`` at that size starts from a fitted model instead of
resampled aux scalers.

Format (learngene format v2 = v1 + an optional bank): ``bank.safetensors`` beside ``learngene.safetensors`` holds
each entry's tensors under ``<key>/<aux name>`` (``d8-w384/aux.scalers.qkv`` ...), with exactly the names and
shapes an aux model of the entry's size would have; ``config.json`` gets ``format_version: "2"`` and a ``bank``
block: the file's sha256 and, per entry, its size, fitting record and the sha256 of its tensors. The tensor file
(and its sha256, the zoo's pin) does not change when entries are added.

An entry is a view of the learngene as if its aux model had the entry's size, so the target is built by the same
resampling code: the identity at the entry's own size, and depth/width resampling from the nearest entry
(:func:`choose_entry`) for sizes the bank does not hold.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import AuxArch, BankEntry, LearngeneConfig, entry_key, validate_bank, with_aux
from .errors import ArtifactFormatError, IntegrityError

__all__ = [
    "BANK_FILE",
    "BANK_FORMAT",
    "Choice",
    "entry_key",
    "parse_size",
    "entry_arch",
    "entry_config",
    "entry_names",
    "entry_sha256",
    "read_bank",
    "write_bank",
    "choose_entry",
    "force_entry",
    "source_for",
    "entries",
]

BANK_FILE = "bank.safetensors"
BANK_FORMAT = "wavehub.bank/1"


def parse_size(text: str) -> tuple[int, int]:
    """``"8x384"`` or ``"d8-w384"`` -> (8, 384)."""
    from .errors import SpecError

    t = str(text).strip().lower()
    try:
        if t.startswith("d") and "-w" in t:
            d, w = t[1:].split("-w")
        else:
            d, w = t.split("x")
        depth, width = int(d), int(w)
    except ValueError:
        raise SpecError(f"cannot read size {text!r}", "Write sizes as DEPTHxWIDTH, e.g. 8x384.") from None
    if depth < 1 or width < 1:
        raise SpecError(f"size {text!r} must be positive", "Write sizes as DEPTHxWIDTH, e.g. 8x384.")
    return depth, width


def entry_arch(config: dict, depth: int, width: int, img_size: int | None = None) -> AuxArch:
    """The aux architecture an entry of this size stands for (same head size, patch and mlp ratio)."""
    return LearngeneConfig.from_dict(_entry_config(config, depth, width, img_size)).aux


def _entry_config(config: dict, depth: int, width: int, img_size: int | None) -> dict:
    head_dim = LearngeneConfig.from_dict(config).aux.head_dim
    changes = {"depth": int(depth), "width": int(width), "num_heads": max(1, int(width) // head_dim)}
    if img_size is not None:
        changes["img_size"] = int(img_size)
    return with_aux(config, **changes)


def entry_config(config: dict, entry: dict) -> dict:
    """The learngene's config with its aux architecture replaced by the entry's."""
    e = BankEntry.from_dict("", entry)
    return _entry_config(config, e.depth, e.width, e.img_size)


def entry_names(config: dict, entry: dict) -> dict[str, tuple[int, ...]]:
    """The aux tensors (names and shapes) an entry must hold."""
    from .methods import get_method

    view = LearngeneConfig.from_dict(entry_config(config, entry))
    shapes = get_method(view.method).expected_shapes(view)
    return {k: v for k, v in shapes.items() if k.startswith("aux.")}


def entry_sha256(tensors: dict[str, Any]) -> str:
    """sha256 over an entry's tensors (sorted names, dtype, shape, raw bytes): detects a swapped or edited entry."""
    import torch

    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def entries(config: dict) -> dict[str, dict]:
    """The bank's entries as recorded in config.json, each its fitting record (``{}`` without a bank)."""
    bank = LearngeneConfig.from_dict(config).bank
    return {k: e.record for k, e in bank.entries.items()} if bank else {}


def _fail(msg: str) -> ArtifactFormatError:
    return ArtifactFormatError(
        msg,
        "Re-download the learngene (`wavehub pull NAME --force`) or rebuild its bank "
        "with `wavehub bank add`.",
    )


def read_bank(folder: str | Path, config: dict, *, verify: bool = True) -> dict[str, dict[str, Any]]:
    """Every entry's tensors, validated against config.json (names, shapes, finiteness, sha256)."""
    from safetensors.torch import load as st_load

    from .methods.base import tensor_mismatch

    if "bank" not in config:
        return {}
    bank = validate_bank(config)
    path = Path(folder) / BANK_FILE
    try:
        data = path.read_bytes()
    except OSError:
        raise _fail(f"config.json lists a bank but {BANK_FILE} is missing from {folder}") from None
    if verify and hashlib.sha256(data).hexdigest() != bank.sha256:
        raise IntegrityError(
            f"{BANK_FILE} in {folder} does not match its recorded sha256 "
            f"({bank.sha256[:12]}...): the file is corrupted or was modified",
            "Re-download the learngene (`wavehub pull NAME --force`).",
        )
    try:
        flat = st_load(data)
    except Exception as e:  # noqa: BLE001 - any parse failure is a format problem
        raise _fail(f"{BANK_FILE} could not be parsed ({type(e).__name__})") from None
    out: dict[str, dict[str, Any]] = {}
    for key, e in bank.entries.items():
        want = entry_names(config, e.record)
        got = {k.split("/", 1)[1]: v for k, v in flat.items() if k.split("/", 1)[0] == key}
        problem = tensor_mismatch(got, want)
        if problem is not None:
            raise _fail(f"bank entry {key!r}: {problem}")
        if verify and entry_sha256(got) != e.sha256:
            raise IntegrityError(
                f"bank entry {key!r} does not match its recorded sha256",
                "Re-download the learngene or refit the entry with `wavehub bank add --force`.",
            )
        out[key] = got
    known = {k.split("/", 1)[0] for k in flat}
    if known - set(bank.entries):
        raise _fail(
            f"{BANK_FILE} holds entries config.json does not list: {sorted(known - set(bank.entries))[:3]}"
        )
    return out


def write_bank(
    folder: str | Path, config: dict, bank: dict[str, dict[str, Any]], records: dict[str, dict]
) -> dict:
    """Write ``bank.safetensors`` then ``config.json`` (atomically, in that order); returns the new config."""
    from safetensors.torch import save as st_save

    from .config import CONFIG_FILE, config_bytes
    from .files import atomic_write_bytes

    folder = Path(folder)
    flat = {
        f"{key}/{name}": t.detach().cpu().contiguous()
        for key, ts in sorted(bank.items())
        for name, t in sorted(ts.items())
    }
    data = st_save(flat, metadata={"format": BANK_FORMAT})  # one key: safetensors orders metadata at random
    ents = {}
    for key in sorted(bank):
        rec = dict(records[key])
        rec["sha256"] = entry_sha256(bank[key])
        rec["bytes"] = sum(t.numel() * t.element_size() for t in bank[key].values())
        ents[key] = rec
    config = dict(
        config,
        format_version="2",
        bank={"file": BANK_FILE, "sha256": hashlib.sha256(data).hexdigest(), "entries": ents},
    )
    atomic_write_bytes(folder / BANK_FILE, data)
    atomic_write_bytes(folder / CONFIG_FILE, config_bytes(config))
    return config


@dataclass(frozen=True)
class Choice:
    """Which entry a target starts from, and by which rule (recorded in the model's ``wavehub_info``)."""

    key: str
    rule: str  # "exact" | "nearest" | "forced"
    pos_embed: str  # "entry" (fitted at this grid) | "aux" (the entry was fitted at another resolution)


def choose_entry(cfg: LearngeneConfig, depth: int, width: int, grid: int | None = None) -> Choice | None:
    """The entry for a target: the exact size, else the nearest entry at least as wide (width is only ever
    selected down, never repeated), nearest in width first and then in depth; None (the aux scalers) when no
    entry is as wide, and at the aux model's own size unless the bank holds that size.

    Sizes are compared on a log scale (a 6-layer entry is nearer to 8 layers than a 16-layer one is to 12)."""
    ents = cfg.bank.entries if cfg.bank else {}
    key = entry_key(depth, width)
    if not ents or (key not in ents and (cfg.aux.depth, cfg.aux.width) == (depth, width)):
        return None  # the aux model is the learngene's own entry for its size
    if key in ents:
        e, rule = ents[key], "exact"
    else:
        wide = [(k, e) for k, e in ents.items() if e.width >= width]
        if not wide:
            return None
        key, e = min(
            wide,
            key=lambda kv: (abs(math.log(kv[1].width / width)), abs(math.log(kv[1].depth / depth)), kv[0]),
        )
        rule = "nearest"
    same_grid = grid is None or e.img_size // cfg.aux.patch_size == grid
    return Choice(key, rule, "entry" if same_grid else "aux")


def force_entry(cfg: LearngeneConfig, key: str, width: int, grid: int | None = None) -> Choice:
    """``bank="d8-w384"``: start from that entry whatever the size (for measuring the rule, or by choice)."""
    from .errors import SpecError

    ents = cfg.bank.entries if cfg.bank else {}
    if key not in ents:
        raise SpecError(
            f"the bank has no entry {key!r}",
            f"Use one of {', '.join(sorted(ents)) or '(none: the learngene has no bank)'}, or bank=True.",
        )
    e = ents[key]
    if e.width < width:
        raise SpecError(
            f"bank entry {key!r} is narrower than width={width}", "Use an entry at least as wide."
        )
    same_grid = grid is None or e.img_size // cfg.aux.patch_size == grid
    return Choice(key, "forced", "entry" if same_grid else "aux")


def source_for(
    tensors: dict[str, Any],
    config: dict,
    entry_tensors: dict[str, Any],
    choice: Choice,
) -> tuple[dict[str, Any], LearngeneConfig]:
    """The learngene seen as if its aux model were the entry: (tensors, typed config) for the methods'
    resampling.

    With ``choice.pos_embed == "aux"`` the entry was fitted at another resolution: its 2-D pos_embed grid would
    have to be interpolated, so the aux one is used instead, selected to the entry's width as fitting began."""
    c = LearngeneConfig.from_dict(config)
    e = c.bank.entries[choice.key]
    cfg = entry_config(config, e.record)
    src = {k: v for k, v in tensors.items() if k.startswith("templates.")}
    src.update(entry_tensors)
    if choice.pos_embed == "aux":
        from .methods.wave import select_width, wave_block

        w = wave_block(c).template_size
        src["aux.pos_embed"] = select_width(tensors["aux.pos_embed"], w, e.width // w)
        cfg = with_aux(cfg, img_size=c.aux.img_size)
    return src, LearngeneConfig.from_dict(cfg)
