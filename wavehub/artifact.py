"""The learngene artifact, format v1: ``learngene.safetensors`` + ``config.json`` + ``README.md``.

Loading validates everything a bad file could get wrong — format name and version, config schema, tensor
names and shapes for the method, finite values, and the sha256 of the tensor file — and turns every failure
into a typed :mod:`wavehub.errors` error, so no malformed or tampered file reaches torch. Writes are atomic.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import (
    CARD_FILE,
    CONFIG_FILE,
    CROP_MODES,
    FORMAT,
    FORMAT_VERSION,
    GLOBAL_POOLS,
    INTERPOLATIONS,
    MAX_CONFIG_BYTES,
    MAX_HEADER_BYTES,
    MAX_JSON_DEPTH,
    TENSOR_FILE,
    AuxArch,
    LearngeneConfig,
    aux_record,
    config_bytes,
    parse_json,
    validate_config,
)
from .errors import (
    ArtifactFormatError,
    ArtifactVersionError,
    IntegrityError,
    LearngeneNotFoundError,
)
from .files import atomic_write_bytes, sha256_bytes, sha256_file

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "TENSOR_FILE",
    "CONFIG_FILE",
    "CARD_FILE",
    "Learngene",
    "save_learngene",
    "load_learngene",
    "read_config",
    "validate_folder",
    "validate_config",
    "sha256_file",
    "sha256_bytes",
    "atomic_write_bytes",
    "expected_shapes",
    "render_card",
    "parse_json",
    "validate_tensors",
    "MAX_CONFIG_BYTES",
    "MAX_JSON_DEPTH",
    "INTERPOLATIONS",
    "CROP_MODES",
    "GLOBAL_POOLS",
]

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
    def cfg(self) -> LearngeneConfig:
        """The typed view of :attr:`config` (read fields here rather than the dict's keys)."""
        return LearngeneConfig.from_dict(self.config, self.method)

    @property
    def name(self) -> str:
        return self.cfg.name or "learngene"

    @property
    def sha256(self) -> str | None:
        return self.cfg.sha256

    @property
    def aux(self) -> dict[str, Any]:
        """config.json's ``aux`` object as a dict (kept for callers; :attr:`arch` is the typed view)."""
        return aux_record(self.config)

    @property
    def arch(self) -> AuxArch:
        """The aux architecture, typed."""
        return self.cfg.aux

    @property
    def num_params(self) -> int:
        return sum(t.numel() for t in self.tensors.values())

    def spec_defaults(self) -> dict[str, Any]:
        """Fields a ViTSpec inherits from this learngene when the user leaves them unset."""
        return self.arch.spec_defaults()


def expected_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes the method requires for this config."""
    from .methods import get_method

    view = LearngeneConfig.from_dict(config)
    return get_method(view.method).expected_shapes(view)


def _fail(msg: str) -> ArtifactFormatError:
    return ArtifactFormatError(msg)


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _check_data_section(header: dict, size: int) -> None:
    """Every tensor's byte range inside the data section, and the section no longer than the last one: a file
    cut short (or padded) after its header is refused before safetensors maps it."""
    end = 0
    for k, v in header.items():
        if k == "__metadata__":
            continue
        off = v.get("data_offsets") if isinstance(v, dict) else None
        if not (
            isinstance(off, list)
            and len(off) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in off)
            and 0 <= off[0] <= off[1]
        ):
            raise _fail(f"{TENSOR_FILE} has a corrupt header entry for {_short(k)}")
        end = max(end, off[1])
    if end != size:
        raise _fail(
            f"{TENSOR_FILE}'s data section is {size:,} bytes, its header describes {end:,}: "
            "the file is truncated or padded"
        )


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
    from safetensors import safe_open  # noqa: F401  (import error is a real install problem, not bad data)
    from safetensors.torch import load as st_load

    from .methods.base import tensor_mismatch

    if len(data) < 8:
        raise _fail(f"{TENSOR_FILE} is truncated ({len(data)} bytes)")
    header_len = int.from_bytes(data[:8], "little")
    if header_len <= 0 or 8 + header_len > len(data):
        raise _fail(f"{TENSOR_FILE} is truncated or not a safetensors file (header length {header_len})")
    header = parse_json(bytes(data[8 : 8 + header_len]), f"{TENSOR_FILE}'s header", MAX_HEADER_BYTES)
    if not isinstance(header, dict):
        raise _fail(f"{TENSOR_FILE} has a corrupt header (not a JSON object)")
    meta = header.get("__metadata__") or {}
    _check_data_section(header, len(data) - 8 - header_len)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(
            f"{TENSOR_FILE} is not a wavehub learngene (metadata format {meta.get('format')!r})"
            if isinstance(meta, dict)
            else f"{TENSOR_FILE} has corrupt metadata"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactVersionError(
            f"{TENSOR_FILE} format version {meta.get('format_version')!r} is not supported"
        )
    try:
        tensors = st_load(data)
    except Exception as e:  # noqa: BLE001 - SafetensorError and friends
        raise _fail(f"{TENSOR_FILE} could not be parsed: {str(e)[:120]}") from None
    problem = tensor_mismatch(tensors, expected_shapes(config))
    if problem is not None:
        raise _fail(f"{TENSOR_FILE} (method {LearngeneConfig.from_dict(config).method!r}): {problem}")
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


def read_config(path: str | os.PathLike) -> LearngeneConfig:
    """A learngene folder's checked, typed config.json, without reading its tensors (reports after a write)."""
    folder = Path(path)
    cfg_path = (folder if folder.is_dir() else folder.parent) / CONFIG_FILE
    if not cfg_path.is_file():
        raise LearngeneNotFoundError(f"no learngene config at {cfg_path}")
    with open(cfg_path, "rb") as f:
        raw = f.read(MAX_CONFIG_BYTES + 1)
    return LearngeneConfig.from_dict(validate_config(parse_json(raw, CONFIG_FILE)))


def validate_folder(path: str | os.PathLike, *, verify: bool = True, sha256: str | None = None) -> dict:
    """All of :func:`load_learngene`'s checks; returns the config (tensors are dropped)."""
    return load_learngene(path, verify=verify, sha256=sha256).config


def load_learngene(
    path: str | os.PathLike,
    *,
    verify: bool = True,
    device: Any = "cpu",
    source: str | None = None,
    sha256: str | None = None,
) -> Learngene:
    """Load and validate a learngene folder (or its ``learngene.safetensors``).

    ``verify=False`` skips only the sha256 comparison (for fuzzing the parser and for quick peeks);
    ``sha256`` is the tensor file's digest when the caller (the hub) already hashed it, so it is not hashed twice."""
    path = Path(path)
    try:
        config, data, card = _read_folder(path)
        config = validate_config(config)
        recorded = LearngeneConfig.from_dict(config).sha256
        if verify and (sha256 or sha256_bytes(data)) != recorded:
            raise IntegrityError(
                f"{TENSOR_FILE} in {path} does not match its recorded sha256 "
                f"({recorded[:12]}...): the file is corrupted or was modified"
            )
        tensors = validate_tensors(data, config)
        from .bank import read_bank

        bank = read_bank(path if path.is_dir() else path.parent, config, verify=verify)
    except (ArtifactFormatError, IntegrityError, ArtifactVersionError) as e:
        if _is_bundled(path):  # not a download: a re-pull cannot fix the package's own copy
            raise type(e)(
                f"the bundled learngene is damaged: {e.message}",
                "Reinstall wavehub (`pip install --force-reinstall wavehub`).",
            ) from None
        raise
    except LearngeneNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - the loader's contract: only wavehub errors escape
        raise _fail(f"learngene at {path} is malformed ({type(e).__name__}: {str(e)[:100]})") from None
    if device not in (None, "cpu"):
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return Learngene(
        LearngeneConfig.from_dict(config).method, config, tensors, card, source or str(path), bank
    )


def save_learngene(
    lg: Learngene,
    out_dir: str | os.PathLike,
    *,
    card: str | None = None,
    force: bool = False,
    kind: str = "learngene",
) -> Path:
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
    config.update(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        method=lg.method,
        sha256=sha256_bytes(data),
        tensor_file=TENSOR_FILE,
        wavehub_version=__version__,
    )
    config.setdefault("created", _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat())
    config.setdefault("params", {}).update(learngene=sum(t.numel() for t in tensors.values()))
    records = (config.pop("bank", None) or {}).get("entries", {})  # an entry's fitting record
    validate_config(config)
    text = card if card is not None else (lg.card or render_card(config))
    keep = sorted(outdir.KINDS[kind].files - {TENSOR_FILE, CONFIG_FILE, CARD_FILE})
    with outdir.writing(out, kind, force=force, keep=keep) as tmp:
        (tmp / TENSOR_FILE).write_bytes(data)
        if lg.bank:  # format v2: the bank file and the config that vouches for both
            from .bank import write_bank

            config = write_bank(tmp, config, lg.bank, records)
        else:
            (tmp / CONFIG_FILE).write_bytes(config_bytes(config))
        (tmp / CARD_FILE).write_text(text, encoding="utf-8")
    lg.config = config
    return out


def _with_metadata_order(data: bytes, meta: dict[str, str]) -> bytes:
    """safetensors writes ``__metadata__`` from a hash map, in a different key order on every call, so the same
    tensors gave a different file and sha256 (the learngene's pin) 5 times in 6. Rewrite it in ``meta``'s order:
    same keys and values, same header length, the tensor entries untouched."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    header["__metadata__"] = dict(meta)
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if (
        len(raw) > n
    ):  # cannot happen for the same keys and values; never write a header safetensors can't read
        return data
    return data[:8] + raw.ljust(n) + data[8 + n :]


def render_card(config: dict) -> str:
    """A minimal Hub model card for a learngene folder (library_name: wavehub)."""
    import yaml

    c = LearngeneConfig.from_dict(config)
    anc, aux = c.ancestry, c.aux
    meta = {
        "library_name": "wavehub",
        "tags": ["learngene", c.method, "vit", "image-classification"],
        "license": c.license,
    }
    if anc.get("hf_id"):
        meta["base_model"] = anc["hf_id"]
    name = c.name if c.name is not None else "learngene"
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False).strip(),
        "---",
        "",
        f"# {name}",
        "",
        f"A **{c.method.upper()}** learngene for [wavehub](https://github.com/wavehub/wavehub): "
        "size-agnostic weight templates from which wavehub builds a stock timm `VisionTransformer` of the depth "
        "and width you ask for.",
        "",
        f"- ancestry: `{anc.get('id', 'unknown')}`",
        f"- aux architecture: depth {aux.depth}, width {aux.width}, {aux.num_heads} heads, "
        f"patch {aux.patch_size}, {aux.img_size} px",
        f"- learngene parameters: {c.params.get('learngene', 'n/a')}",
        f"- sha256 of `{TENSOR_FILE}`: `{c.sha256}`",
        "",
        "## Usage",
        "",
        "```python",
        "import wavehub",
        f'model = wavehub.from_learngene("{name}", depth=8, width={aux.width}, num_classes=10)',
        "```",
        "",
    ]
    return "\n".join(lines)
