"""config.json of a learngene: its schema, checked once, and typed views of its blocks.

This is the only module that reads config.json's fields. :func:`validate_config` checks a parsed file (types and
ranges, so later arithmetic on it cannot blow up; any failure an ArtifactFormatError) and
:func:`LearngeneConfig.from_dict` gives the typed view every other module reads: the aux architecture, the
method block, the preprocessing fields and the bank block (checked by :func:`validate_bank` when the bank file is
read). A method's own block keeps its schema in its module (``wavehub.methods.wave.WaveBlock``). The dict itself stays the record that is written
back, so a saved config.json keeps its exact bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ArtifactFormatError, ArtifactVersionError
from .spec import ViTShape

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CONFIG_VERSIONS",
    "TENSOR_FILE",
    "CONFIG_FILE",
    "CARD_FILE",
    "MAX_CONFIG_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_JSON_DEPTH",
    "INTERPOLATIONS",
    "CROP_MODES",
    "GLOBAL_POOLS",
    "AuxArch",
    "DataConfig",
    "BankEntry",
    "BankBlock",
    "LearngeneConfig",
    "parse_json",
    "validate_config",
    "config_bytes",
    "with_aux",
    "aux_record",
    "entry_key",
    "validate_bank",
]

FORMAT = "wavehub.learngene"
FORMAT_VERSION = "1"  # the tensor file's format (unchanged by a bank)
#: config.json versions this wavehub reads: "1", and "2" = "1" plus an optional bank (wavehub.bank)
CONFIG_VERSIONS = ("1", "2")
TENSOR_FILE = "learngene.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
_AUX_INT_KEYS = ("depth", "width", "num_heads", "patch_size", "img_size", "in_chans")
MAX_CONFIG_BYTES = 1 << 20  # a learngene's config.json is a few KB; anything near this is not one
MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit for its JSON header
MAX_JSON_DEPTH = 32  # the schema nests 4 deep; far deeper JSON would overflow recursive readers
# the values create_model and the exports can pass on (PIL's filters; timm's crop modes and pools)
INTERPOLATIONS = ("nearest", "lanczos", "bilinear", "bicubic", "box", "hamming")
CROP_MODES = ("squash", "center", "border")
GLOBAL_POOLS = ("token", "avg", "max", "avgmax", "")


def _fail(msg: str) -> ArtifactFormatError:
    return ArtifactFormatError(msg)


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-finite number {name}")


def parse_json(raw: bytes | str, what: str, max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """JSON bounded in size and nesting depth, strict numbers (no NaN/Infinity), any failure an
    ArtifactFormatError: the one reader for config.json and the safetensors header, so a hostile file cannot
    raise RecursionError or MemoryError here or in any later recursive walk of the result."""
    if len(raw) > max_bytes:
        raise _fail(f"{what} is {len(raw):,} bytes, over the {max_bytes:,}-byte limit")
    try:
        obj = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise _fail(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError, TypeError) as e:
        raise _fail(f"{what} is not valid JSON ({type(e).__name__}: {str(e)[:80]})") from None
    stack = [(obj, 1)]
    while stack:  # iterative: the depth check itself must not recurse
        o, d = stack.pop()
        if d > MAX_JSON_DEPTH:
            raise _fail(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)
    return obj


def _pos_int(d: dict, key: str, where: str, limit: int = 1 << 20) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not 0 < v <= limit:
        raise _fail(f"{where}.{key} must be a positive integer, got {v!r}")
    return v


def validate_config(config: Any) -> dict:
    """Check config.json's schema (types and ranges), so later arithmetic on it cannot blow up."""
    if not isinstance(config, dict):
        raise _fail("config.json is not a JSON object")
    if config.get("format") != FORMAT:
        raise _fail(f"config.json format is {config.get('format')!r}, expected {FORMAT!r}")
    version = config.get("format_version")
    if version not in CONFIG_VERSIONS:
        raise ArtifactVersionError(
            f"learngene format version {version!r} is not supported (this wavehub reads "
            f"versions {', '.join(CONFIG_VERSIONS)})",
            "Upgrade wavehub: pip install -U wavehub",
        )
    from .methods import METHODS

    method = METHODS.get(config.get("method")) if isinstance(config.get("method"), str) else None
    if method is None:
        raise _fail(f"unknown method {config.get('method')!r}; expected one of {', '.join(METHODS)}")
    if "bank" in config and (version == "1" or not method.has_scalers):
        raise _fail("a bank needs format_version 2 and a WAVE learngene")
    aux = config.get("aux")
    if not isinstance(aux, dict):
        raise _fail("config.json has no 'aux' architecture object")
    for k in _AUX_INT_KEYS:
        _pos_int(aux, k, "aux", limit=1 << 16)
    mr = aux.get("mlp_ratio")
    if not isinstance(mr, (int, float)) or isinstance(mr, bool) or not (0 < mr <= 64) or math.isnan(mr):
        raise _fail(f"aux.mlp_ratio must be a number in (0, 64], got {mr!r}")
    if (aux["width"] * mr) != int(aux["width"] * mr):
        raise _fail("aux.width * aux.mlp_ratio must be an integer")
    if aux["width"] % aux["num_heads"] or aux["img_size"] % aux["patch_size"]:
        raise _fail("aux architecture is inconsistent (heads must divide width, patch must divide img_size)")
    if not isinstance(aux.get("class_token", True), bool):
        raise _fail("aux.class_token must be true or false")
    if aux["width"] * aux["depth"] > 1 << 24 or (aux["img_size"] // aux["patch_size"]) ** 2 > 1 << 20:
        raise _fail("aux architecture is implausibly large")
    sha = config.get("sha256")
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        raise _fail("config.json sha256 must be the 64-hex-digit sha256 of learngene.safetensors")
    _validate_aux_extras(aux)
    _validate_data_fields(config, aux)
    _validate_descriptive(config)
    for name in METHODS:  # another method's block is never read, but must not be malformed either
        if config.get(name) is not None and not isinstance(config[name], dict):
            raise _fail(f"config.json {name} must be an object")
    method.validate_block(AuxArch.from_dict(aux), config.get(method.name))
    return config


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _validate_aux_extras(aux: dict) -> None:
    gp = aux.get("global_pool")
    if gp is not None and gp not in GLOBAL_POOLS:
        raise _fail(f"aux.global_pool must be one of {', '.join(map(repr, GLOBAL_POOLS))}, got {_short(gp)}")
    if gp == "token" and aux.get("class_token", True) is False:
        raise _fail("aux.global_pool 'token' needs aux.class_token true")


def _validate_data_fields(config: dict, aux: dict) -> None:
    """The preprocessing fields create_model copies into the model's pretrained_cfg and the exports write."""
    for key in ("mean", "std", "interpolation", "crop_pct", "crop_mode"):
        if key in config and config[key] is None:  # create_model reads them with .get(key, default)
            raise _fail(f"config.json {key} is null; leave it out for the default")
    for key in ("mean", "std"):
        v = config.get(key)
        if v is None:
            continue
        if not (isinstance(v, list) and len(v) in {1, 3, aux["in_chans"]} and all(_number(x) for x in v)):
            raise _fail(
                f"config.json {key} must be a list of 1, 3 or in_chans finite numbers, got {_short(v)}"
            )
        if key == "std" and not all(x > 0 for x in v):
            raise _fail("config.json std values must be positive")
    interp = config.get("interpolation")
    if interp is not None and interp not in INTERPOLATIONS:
        raise _fail(
            f"config.json interpolation must be one of {', '.join(INTERPOLATIONS)}, got {_short(interp)}"
        )
    crop = config.get("crop_pct")
    if crop is not None and not (_number(crop) and 0.1 <= crop <= 1.0):
        raise _fail(f"config.json crop_pct must be a number in [0.1, 1], got {_short(crop)}")
    mode = config.get("crop_mode")
    if mode is not None and mode not in CROP_MODES:
        raise _fail(f"config.json crop_mode must be one of {', '.join(CROP_MODES)}, got {_short(mode)}")


def _validate_descriptive(config: dict) -> None:
    """Names, ancestry and counts: written into model cards, YAML metadata and pretrained_cfg."""
    for key in ("name", "repo_id", "license", "created", "wavehub_version"):
        v = config.get(key)
        if v is not None and not (isinstance(v, str) and len(v) <= 256):
            raise _fail(f"config.json {key} must be a string of at most 256 characters, got {_short(v)}")
    tf = config.get("tensor_file")
    if tf is not None and tf != TENSOR_FILE:
        raise _fail(f"config.json tensor_file must be {TENSOR_FILE!r}, got {_short(tf)}")
    anc = config.get("ancestry")
    if anc is not None:
        if not isinstance(anc, dict):
            raise _fail(f"config.json ancestry must be an object, got {_short(anc)}")
        for k, v in anc.items():
            if v is not None and not (isinstance(v, (str, bool)) or _number(v)):
                raise _fail(f"config.json ancestry.{_short(k)} must be a string or number, got {_short(v)}")
    for key in ("params", "serves"):
        v = config.get(key)
        if v is not None and not isinstance(v, dict):
            raise _fail(f"config.json {key} must be an object, got {_short(v)}")


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def config_bytes(config: Mapping[str, Any]) -> bytes:
    """config.json's bytes: sorted keys, two-space indent, a final newline (the published files' layout, which
    their sha256 pins depend on)."""
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode("utf-8")


def aux_record(config: Mapping[str, Any]) -> dict[str, Any]:
    """config.json's ``aux`` object itself (the record a saved file writes back; :class:`AuxArch` is its view)."""
    return config["aux"]


def with_aux(config: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``config`` whose aux architecture has ``changes`` (a bank entry seen as the aux model)."""
    return dict(config, aux=dict(config["aux"], **changes))


def entry_key(depth: int, width: int) -> str:
    """A bank entry's key in config.json (``d8-w384``)."""
    return f"d{int(depth)}-w{int(width)}"


def _bank_fail(msg: str) -> ArtifactFormatError:
    return ArtifactFormatError(
        msg,
        "Re-download the learngene (`wavehub pull NAME --force`) or rebuild its bank "
        "with `wavehub bank add`.",
    )


def validate_bank(config: Mapping[str, Any]) -> BankBlock:
    """Check config.json's ``bank`` block (read when the bank file is, see wavehub.bank) and return its view."""
    bank = config.get("bank")
    if not isinstance(bank, dict) or not isinstance(bank.get("entries"), dict):
        raise _bank_fail("config.json 'bank' must be an object with an 'entries' object")
    sha = bank.get("sha256")
    if not (isinstance(sha, str) and len(sha) == 64):
        raise _bank_fail("config.json bank.sha256 must be the sha256 of bank.safetensors")
    patch = AuxArch.from_dict(config["aux"]).patch_size
    for key, e in bank["entries"].items():
        if not isinstance(e, dict):
            raise _bank_fail(f"bank entry {key!r} is not an object")
        for f in ("depth", "width", "img_size"):
            v = e.get(f)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 < v <= 1 << 14:
                raise _bank_fail(f"bank entry {key!r}: {f} must be a positive integer, got {v!r}")
        if key != entry_key(e["depth"], e["width"]):
            raise _bank_fail(f"bank entry {key!r} does not match its size {e['depth']}x{e['width']}")
        if e["img_size"] % patch:
            raise _bank_fail(f"bank entry {key!r}: img_size must be a multiple of the patch size")
        if not (isinstance(e.get("sha256"), str) and len(e["sha256"]) == 64):
            raise _bank_fail(f"bank entry {key!r} has no sha256")
    return BankBlock.from_dict(bank)


# ------------------------------------------------------------------------------------------- typed views


@dataclass(frozen=True)
class AuxArch(ViTShape):
    """The aux model's architecture (config.json ``aux``): what the learngene's tensors are shaped for."""

    depth: int
    width: int
    num_heads: int
    mlp_ratio: float
    patch_size: int
    img_size: int
    in_chans: int
    #: None: not recorded (older files), which means a class token for the tensors and "inherit" for a spec
    class_token: bool | None = None
    global_pool: str | None = None

    @classmethod
    def from_dict(cls, aux: Mapping[str, Any]) -> AuxArch:
        return cls(
            depth=aux["depth"],
            width=aux["width"],
            num_heads=aux["num_heads"],
            mlp_ratio=aux["mlp_ratio"],
            patch_size=aux["patch_size"],
            img_size=aux["img_size"],
            in_chans=aux["in_chans"],
            class_token=aux.get("class_token"),
            global_pool=aux.get("global_pool"),
        )

    @property
    def has_class_token(self) -> bool:
        return self.class_token is not False

    @property
    def head_dim(self) -> int:
        return self.width // self.num_heads

    def spec_defaults(self) -> dict[str, Any]:
        """Fields a ViTSpec inherits from the aux model when the user leaves them unset."""
        return {
            "patch_size": self.patch_size,
            "img_size": self.img_size,
            "in_chans": self.in_chans,
            "mlp_ratio": self.mlp_ratio,
            "class_token": self.class_token,
            "global_pool": self.global_pool,
            "head_dim": self.head_dim,
        }


@dataclass(frozen=True)
class DataConfig:
    """The preprocessing a learngene's models expect (copied into pretrained_cfg and the exports); None: unset,
    the reader's default applies."""

    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    interpolation: str | None = None
    crop_pct: float | None = None
    crop_mode: str | None = None

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> DataConfig:
        def tup(v):
            return None if v is None else tuple(v)

        return cls(
            mean=tup(config.get("mean")),
            std=tup(config.get("std")),
            interpolation=config.get("interpolation"),
            crop_pct=config.get("crop_pct"),
            crop_mode=config.get("crop_mode"),
        )


@dataclass(frozen=True)
class BankEntry:
    """One pre-fitted size of a bank (``bank.entries.<key>``): its size and its fitting record."""

    key: str
    depth: int
    width: int
    img_size: int
    sha256: str | None
    record: Mapping[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_dict(cls, key: str, e: Mapping[str, Any]) -> BankEntry:
        return cls(key, e["depth"], e["width"], e["img_size"], e.get("sha256"), e)


@dataclass(frozen=True)
class BankBlock:
    """config.json ``bank`` (format v2): the bank file's sha256 and its entries by key."""

    sha256: str
    entries: Mapping[str, BankEntry]
    file: str = "bank.safetensors"

    @classmethod
    def from_dict(cls, bank: Mapping[str, Any]) -> BankBlock:
        ents = {k: BankEntry.from_dict(k, e) for k, e in (bank.get("entries") or {}).items()}
        return cls(sha256=bank.get("sha256"), entries=ents, file=bank.get("file", "bank.safetensors"))


@dataclass(frozen=True)
class LearngeneConfig:
    """A typed view of one config.json: read these fields, not the dict's keys."""

    method: str
    aux: AuxArch
    #: the method's own block (``config[method]``; its schema is the method's, see wavehub.methods)
    block: Mapping[str, Any]
    data: DataConfig
    bank: BankBlock | None = None
    format_version: str | None = None
    name: str | None = None
    repo_id: str | None = None
    sha256: str | None = None
    ancestry: Mapping[str, Any] = field(default_factory=dict)
    recipe: Mapping[str, Any] = field(default_factory=dict)
    serves: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], method: str | None = None) -> LearngeneConfig:
        """The view of a config dict (validated by :func:`validate_config` when it came from a file; a config
        being built in memory needs only ``aux``)."""
        method = method or config.get("method")
        bank = config.get("bank")
        return cls(
            method=method,
            aux=AuxArch.from_dict(config["aux"]),
            block=config.get(method) or {},
            data=DataConfig.from_dict(config),
            bank=BankBlock.from_dict(bank) if bank else None,
            format_version=config.get("format_version"),
            name=config.get("name"),
            repo_id=config.get("repo_id"),
            sha256=config.get("sha256"),
            ancestry=config.get("ancestry") or {},
            recipe=config.get("recipe") or {},
            serves=config.get("serves") or {},
            params=config.get("params") or {},
        )

    @property
    def license(self) -> str:
        return self.ancestry.get("license", "apache-2.0")
