"""The learngene artifact, format v1: ``learngene.safetensors`` + ``config.json`` + ``README.md``.

Loading validates everything a bad file could get wrong — format name and version, config schema, tensor
names and shapes for the method, finite values, and the sha256 of the tensor file — and turns every failure
into a typed :mod:`wavehub.errors` error, so no malformed or tampered file reaches torch. Writes are atomic.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import (
    ArtifactFormatError,
    ArtifactVersionError,
    IntegrityError,
    LearngeneNotFoundError,
)

__all__ = [
    "FORMAT", "FORMAT_VERSION", "TENSOR_FILE", "CONFIG_FILE", "CARD_FILE", "METHODS",
    "Learngene", "save_learngene", "load_learngene", "validate_folder", "validate_config", "sha256_file",
    "sha256_bytes", "atomic_write_bytes", "expected_shapes", "render_card", "parse_json", "validate_tensors",
    "MAX_CONFIG_BYTES", "MAX_JSON_DEPTH", "INTERPOLATIONS", "CROP_MODES", "GLOBAL_POOLS",
]

FORMAT = "wavehub.learngene"
FORMAT_VERSION = "1"          # the tensor file's format (unchanged by a bank)
#: config.json versions this wavehub reads: "1", and "2" = "1" plus an optional bank (wavehub.bank)
CONFIG_VERSIONS = ("1", "2")
TENSOR_FILE = "learngene.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
METHODS = ("wave", "tleg", "select")
_AUX_INT_KEYS = ("depth", "width", "num_heads", "patch_size", "img_size", "in_chans")
MAX_CONFIG_BYTES = 1 << 20        # a learngene's config.json is a few KB; anything near this is not one
MAX_HEADER_BYTES = 100 << 20      # safetensors' own limit for its JSON header
MAX_JSON_DEPTH = 32               # the schema nests 4 deep; far deeper JSON would overflow recursive readers
# the values create_model and the exports can pass on (PIL's filters; timm's crop modes and pools)
INTERPOLATIONS = ("nearest", "lanczos", "bilinear", "bicubic", "box", "hamming")
CROP_MODES = ("squash", "center", "border")
GLOBAL_POOLS = ("token", "avg", "max", "avgmax", "")
_BUNDLED_DIR = Path(__file__).resolve().parent / "_bundled"


@dataclass
class Learngene:
    """A loaded learngene: its method, its config.json and its tensors (plus the card text, if any)."""

    method: str
    config: dict[str, Any]
    tensors: dict[str, Any] = field(repr=False)
    card: str | None = field(default=None, repr=False)
    source: str | None = None
    #: pre-fitted entries per size, ``{"d8-w384": {aux tensor name: tensor}}`` (format v2; see wavehub.bank)
    bank: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.config.get("name") or "learngene"

    @property
    def sha256(self) -> str | None:
        return self.config.get("sha256")

    @property
    def aux(self) -> dict[str, Any]:
        return self.config["aux"]

    @property
    def num_params(self) -> int:
        return sum(t.numel() for t in self.tensors.values())

    def spec_defaults(self) -> dict[str, Any]:
        """Fields a ViTSpec inherits from this learngene when the user leaves them unset."""
        a = self.aux
        return {k: a.get(k) for k in ("patch_size", "img_size", "in_chans", "mlp_ratio", "class_token",
                                      "global_pool")} | {"head_dim": a["width"] // a["num_heads"]}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file through a read-only memory map: one ``update`` over the whole file, so hashlib drops
    the GIL once (not once per chunk) and a pull's hash thread does not queue behind the download thread."""
    import mmap

    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return hashlib.sha256().hexdigest()
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return hashlib.sha256(m).hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file in the same directory, fsync, then rename over ``path``: never a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; a published file must be readable by all
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def expected_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes the method requires for this config."""
    method = config["method"]
    if method == "wave":
        from .methods.wave import expected_shapes as f
    elif method == "tleg":
        from .methods.tleg import expected_shapes as f
    else:
        from .methods.select import expected_shapes as f
    return f(config)


def method_of(config: dict) -> Any:
    return config.get("method") if isinstance(config, dict) else None


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
        raise ArtifactVersionError(f"learngene format version {version!r} is not supported (this wavehub reads "
                                   f"versions {', '.join(CONFIG_VERSIONS)})", "Upgrade wavehub: pip install -U wavehub")
    if "bank" in config and (version == "1" or method_of(config) != "wave"):
        raise _fail("a bank needs format_version 2 and a WAVE learngene")
    method = config.get("method")
    if method not in METHODS:
        raise _fail(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
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
    for block in ("tleg", "select"):
        if config.get(block) is not None and not isinstance(config[block], dict):
            raise _fail(f"config.json {block} must be an object")
    if method == "wave":
        _validate_wave(config, aux)
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
            raise _fail(f"config.json {key} must be a list of 1, 3 or in_chans finite numbers, got {_short(v)}")
        if key == "std" and not all(x > 0 for x in v):
            raise _fail("config.json std values must be positive")
    interp = config.get("interpolation")
    if interp is not None and interp not in INTERPOLATIONS:
        raise _fail(f"config.json interpolation must be one of {', '.join(INTERPOLATIONS)}, got {_short(interp)}")
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


def _validate_wave(config: dict, aux: dict) -> None:
    from .methods.wave import TYPES

    wave = config.get("wave")
    if not isinstance(wave, dict) or not isinstance(wave.get("types"), dict):
        raise _fail("config.json lacks the 'wave' block with per-type template settings")
    if wave.get("order", "S_kron_T") != "S_kron_T":
        raise _fail(f"unsupported Kronecker order {wave.get('order')!r}")
    w = _pos_int(wave, "template_size", "wave", limit=1 << 12)
    hidden = int(aux["width"] * aux["mlp_ratio"])
    if aux["width"] % w or hidden % w:
        raise _fail("wave.template_size must divide the aux width and mlp hidden size")
    for name in TYPES:
        tc = wave["types"].get(name)
        if not isinstance(tc, dict):
            raise _fail(f"wave.types.{name} is missing")
        for k in ("w1", "w2", "n", "bias_n"):
            _pos_int(tc, k, f"wave.types.{name}", limit=1 << 16)
        if tc["w1"] != w:
            raise _fail(f"wave.types.{name}.w1 must equal wave.template_size")
        want_w2 = aux["in_chans"] * aux["patch_size"] ** 2 if name == "patch_embed" else w
        if tc["w2"] != want_w2:
            raise _fail(f"wave.types.{name}.w2 must be {want_w2}")


def _check_data_section(header: dict, size: int) -> None:
    """Every tensor's byte range inside the data section, and the section no longer than the last one: a file
    cut short (or padded) after its header is refused before safetensors maps it."""
    end = 0
    for k, v in header.items():
        if k == "__metadata__":
            continue
        off = v.get("data_offsets") if isinstance(v, dict) else None
        if not (isinstance(off, list) and len(off) == 2 and all(isinstance(o, int) and not isinstance(o, bool)
                                                               for o in off) and 0 <= off[0] <= off[1]):
            raise _fail(f"{TENSOR_FILE} has a corrupt header entry for {_short(k)}")
        end = max(end, off[1])
    if end != size:
        raise _fail(f"{TENSOR_FILE}'s data section is {size:,} bytes, its header describes {end:,}: "
                    "the file is truncated or padded")


def validate_tensors(data: bytes, config: dict) -> dict:
    """The tensors of a safetensors file checked against a validated config (names, shapes, floating dtype,
    finite values); any failure an ArtifactFormatError. Loading, ``pull`` and ``cache verify`` all run this."""
    try:
        return _parse_tensors(data, config)
    except (ArtifactFormatError, ArtifactVersionError):
        raise
    except Exception as e:  # noqa: BLE001 - only wavehub errors escape
        raise _fail(f"{TENSOR_FILE} is malformed ({type(e).__name__}: {str(e)[:100]})") from None


def _parse_tensors(data: bytes, config: dict) -> dict:
    """Parse safetensors bytes, check metadata and the exact tensor set; any failure -> ArtifactFormatError."""
    import torch
    from safetensors import safe_open  # noqa: F401  (import error is a real install problem, not bad data)
    from safetensors.torch import load as st_load

    if len(data) < 8:
        raise _fail(f"{TENSOR_FILE} is truncated ({len(data)} bytes)")
    header_len = int.from_bytes(data[:8], "little")
    if header_len <= 0 or 8 + header_len > len(data):
        raise _fail(f"{TENSOR_FILE} is truncated or not a safetensors file (header length {header_len})")
    header = parse_json(bytes(data[8:8 + header_len]), f"{TENSOR_FILE}'s header", MAX_HEADER_BYTES)
    if not isinstance(header, dict):
        raise _fail(f"{TENSOR_FILE} has a corrupt header (not a JSON object)")
    meta = header.get("__metadata__") or {}
    _check_data_section(header, len(data) - 8 - header_len)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(f"{TENSOR_FILE} is not a wavehub learngene (metadata format {meta.get('format')!r})"
                    if isinstance(meta, dict) else f"{TENSOR_FILE} has corrupt metadata")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactVersionError(f"{TENSOR_FILE} format version {meta.get('format_version')!r} is not supported")
    try:
        tensors = st_load(data)
    except Exception as e:  # noqa: BLE001 - SafetensorError and friends
        raise _fail(f"{TENSOR_FILE} could not be parsed: {str(e)[:120]}") from None
    want = expected_shapes(config)
    missing = sorted(set(want) - set(tensors))
    extra = sorted(set(tensors) - set(want))
    if missing or extra:
        raise _fail(f"{TENSOR_FILE} tensor names do not match method {config['method']!r}: "
                    f"missing {missing[:4]}{'...' if len(missing) > 4 else ''}, "
                    f"unexpected {extra[:4]}{'...' if len(extra) > 4 else ''}")
    for k, shape in want.items():
        t = tensors[k]
        if tuple(t.shape) != tuple(shape):
            raise _fail(f"tensor {k} has shape {tuple(t.shape)}, expected {tuple(shape)}")
        if not t.is_floating_point():
            raise _fail(f"tensor {k} has dtype {t.dtype}, expected a floating-point dtype")
        if not bool(torch.isfinite(t).all()):
            raise _fail(f"tensor {k} contains NaN or infinite values")
    return tensors


def _read_folder(path: Path) -> tuple[dict, bytes, str | None]:
    if path.is_file():
        if path.name != TENSOR_FILE:
            raise _fail(f"{path} is not a learngene folder or {TENSOR_FILE}")
        path = path.parent
    if not path.exists():
        raise LearngeneNotFoundError(f"no learngene at {path}")
    cfg_path, ten_path = path / CONFIG_FILE, path / TENSOR_FILE
    for p in (cfg_path, ten_path):
        if not p.is_file():
            raise _fail(f"{path} is not a learngene folder: {p.name} is missing")
    with open(cfg_path, "rb") as f:
        raw = f.read(MAX_CONFIG_BYTES + 1)
    config = parse_json(raw, CONFIG_FILE)
    card_path = path / CARD_FILE
    card = card_path.read_text(encoding="utf-8", errors="replace") if card_path.is_file() else None
    return config, ten_path.read_bytes(), card


def _is_bundled(path: Path) -> bool:
    try:
        return _BUNDLED_DIR in Path(path).resolve().parents
    except OSError:
        return False


def validate_folder(path: str | os.PathLike, *, verify: bool = True, sha256: str | None = None) -> dict:
    """All of :func:`load_learngene`'s checks; returns the config (tensors are dropped)."""
    return load_learngene(path, verify=verify, sha256=sha256).config


def load_learngene(path: str | os.PathLike, *, verify: bool = True, device: Any = "cpu",
                   source: str | None = None, sha256: str | None = None) -> Learngene:
    """Load and validate a learngene folder (or its ``learngene.safetensors``).

    ``verify=False`` skips only the sha256 comparison (for fuzzing the parser and for quick peeks);
    ``sha256`` is the tensor file's digest when the caller (the hub) already hashed it, so it is not hashed twice."""
    path = Path(path)
    try:
        config, data, card = _read_folder(path)
        config = validate_config(config)
        if verify and (sha256 or sha256_bytes(data)) != config["sha256"]:
            raise IntegrityError(f"{TENSOR_FILE} in {path} does not match its recorded sha256 "
                                 f"({config['sha256'][:12]}...): the file is corrupted or was modified")
        tensors = validate_tensors(data, config)
        from .bank import read_bank

        bank = read_bank(path if path.is_dir() else path.parent, config, verify=verify)
    except (ArtifactFormatError, IntegrityError, ArtifactVersionError) as e:
        if _is_bundled(path):  # not a download: a re-pull cannot fix the package's own copy
            raise type(e)(f"the bundled learngene is damaged: {e.message}",
                          "Reinstall wavehub (`pip install --force-reinstall wavehub`).") from None
        raise
    except LearngeneNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - the loader's contract: only wavehub errors escape
        raise _fail(f"learngene at {path} is malformed ({type(e).__name__}: {str(e)[:100]})") from None
    if device not in (None, "cpu"):
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return Learngene(config["method"], config, tensors, card, source or str(path), bank)


def save_learngene(lg: Learngene, out_dir: str | os.PathLike, *, card: str | None = None, force: bool = False,
                   kind: str = "learngene") -> Path:
    """Write the three files into a new folder beside ``out_dir`` and swap it into place (:mod:`wavehub.outdir`):
    an interrupted save leaves the previous learngene intact. ``kind="build"`` keeps a build's checkpoint and log.
    """
    from safetensors.torch import save as st_save

    from . import __version__, outdir

    out = Path(out_dir)
    outdir.check(out, kind, force=force)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in lg.tensors.items()}
    # key order of the learngenes already published (the bundled one), so their sha256 reproduces
    meta = {"format_version": FORMAT_VERSION, "format": FORMAT, "method": lg.method}
    data = _with_metadata_order(st_save(tensors, metadata=meta), meta)
    config = dict(lg.config)
    config.update(format=FORMAT, format_version=FORMAT_VERSION, method=lg.method, sha256=sha256_bytes(data),
                  tensor_file=TENSOR_FILE, wavehub_version=__version__)
    config.setdefault("created", _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat())
    config.setdefault("params", {})
    config["params"]["learngene"] = sum(t.numel() for t in tensors.values())
    records = (config.pop("bank", None) or {}).get("entries", {})   # an entry's fitting record
    validate_config(config)
    text = card if card is not None else (lg.card or render_card(config))
    keep = sorted(outdir.KINDS[kind].files - {TENSOR_FILE, CONFIG_FILE, CARD_FILE})
    with outdir.writing(out, kind, force=force, keep=keep) as tmp:
        (tmp / TENSOR_FILE).write_bytes(data)
        if lg.bank:  # format v2: the bank file and the config that vouches for both
            from .bank import write_bank

            config = write_bank(tmp, config, lg.bank, records)
        else:
            (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (tmp / CARD_FILE).write_text(text, encoding="utf-8")
    lg.config = config
    return out


def _with_metadata_order(data: bytes, meta: dict[str, str]) -> bytes:
    """safetensors writes ``__metadata__`` from a hash map, in a different key order on every call, so the same
    tensors gave a different file and sha256 (the learngene's pin) 5 times in 6. Rewrite it in ``meta``'s order:
    same keys and values, same header length, the tensor entries untouched."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["__metadata__"] = dict(meta)
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(raw) > n:  # cannot happen for the same keys and values; never write a header safetensors can't read
        return data
    return data[:8] + raw.ljust(n) + data[8 + n:]


def render_card(config: dict) -> str:
    """A minimal Hub model card for a learngene folder (library_name: wavehub)."""
    import yaml

    anc = config.get("ancestry") or {}
    meta = {
        "library_name": "wavehub",
        "tags": ["learngene", config["method"], "vit", "image-classification"],
        "license": anc.get("license", "apache-2.0"),
    }
    if anc.get("hf_id"):
        meta["base_model"] = anc["hf_id"]
    name = config.get("name", "learngene")
    aux = config["aux"]
    lines = [
        "---", yaml.safe_dump(meta, sort_keys=False).strip(), "---", "",
        f"# {name}", "",
        f"A **{config['method'].upper()}** learngene for [wavehub](https://github.com/wavehub/wavehub): "
        "size-agnostic weight templates from which wavehub builds a stock timm `VisionTransformer` of the depth "
        "and width you ask for.", "",
        f"- ancestry: `{anc.get('id', 'unknown')}`",
        f"- aux architecture: depth {aux['depth']}, width {aux['width']}, {aux['num_heads']} heads, "
        f"patch {aux['patch_size']}, {aux['img_size']} px",
        f"- learngene parameters: {config.get('params', {}).get('learngene', 'n/a')}",
        f"- sha256 of `{TENSOR_FILE}`: `{config.get('sha256')}`", "",
        "## Usage", "", "```python", "import wavehub",
        f'model = wavehub.from_learngene("{name}", depth=8, width={aux["width"]}, num_classes=10)', "```", "",
    ]
    return "\n".join(lines)
