"""The record every learngene method fills in, the target shape it builds for, and the check that stored
tensors are the ones it reads.

A method is a plain bundle of functions (timm's registry style: no classes to subclass, no plugin magic): the
callers in materialize, extract, artifact, fit and build look a method up by the name in config.json and
call its functions, so none of them branches on the method's name. Only :mod:`wavehub.errors` is imported from
outside ``methods/``: the target is described by the :class:`Target` protocol (``ViTSpec`` satisfies it) and the
learngene's config by :class:`Aux` and :class:`Config` (``wavehub.config.AuxArch`` and ``LearngeneConfig``
satisfy them), so this layer stays pure tensor code that every other layer may use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from types import ModuleType
from typing import Any, Protocol

__all__ = ["HOOKS", "Method", "Shape", "Target", "Aux", "Config", "View", "tensor_mismatch"]


class Shape(Protocol):
    """The sizes every method reads from both the learngene's aux model and the target."""

    depth: int
    width: int
    mlp_ratio: float
    patch_size: int
    in_chans: int

    @property
    def grid(self) -> int: ...

    @property
    def mlp_hidden(self) -> int: ...


class Target(Shape, Protocol):
    """What a method needs to know about the model it builds (``wavehub.spec.ViTSpec`` is one)."""

    class_token: bool

    @property
    def final_norm(self) -> str: ...


class Aux(Shape, Protocol):
    """The aux architecture a learngene's tensors are shaped for (``wavehub.config.AuxArch`` is one)."""

    @property
    def has_class_token(self) -> bool: ...


class Config(Protocol):
    """A learngene's config as the methods read it: the aux architecture and the method's own block
    (``wavehub.config.LearngeneConfig`` is one; the block stays the dict config.json holds)."""

    @property
    def aux(self) -> Aux: ...

    @property
    def block(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class View:
    """A :class:`Config` built inside a method (extraction and random starts, before any config.json exists)."""

    aux: Aux
    block: Mapping[str, Any]


#: The :class:`Method` fields a method's module fills with functions of the same name.
HOOKS = (
    "expected_shapes",
    "validate_block",
    "check_spec",
    "compose",
    "extract",
    "serves",
    "distill_init",
    "export",
)


@dataclass(frozen=True)
class Method:
    """One learngene method: its name in config.json and the functions that work on its tensors.

    ``cfg`` below is a learngene's config as a :class:`Config` (``cfg.aux`` the aux architecture, ``cfg.block``
    the method's own block); ``arch`` an :class:`Aux`; ``tensors`` the learngene's tensors by name; ``spec`` a
    :class:`Target`. Every function raises only :mod:`wavehub.errors` types for a bad input.
    """

    #: The value of config.json's ``method`` and the key of the method's own block in it.
    name: str
    #: One line for cards and error messages.
    summary: str
    #: ``(cfg) -> {tensor name: shape}``: every tensor the learngene must hold (loading validates against it).
    expected_shapes: Callable[[Config], dict[str, tuple[int, ...]]]
    #: ``(arch, block) -> None``: check the method's own config block (the raw JSON value, None when absent)
    #: against a validated aux architecture; raises ArtifactFormatError (a schema error).
    validate_block: Callable[[Aux, Any], None]
    #: ``(cfg, spec) -> None``: refuse a target this method cannot build (SpecError, before any allocation).
    check_spec: Callable[[Config, Target], None]
    #: ``(tensors, cfg, spec, *, scalers, init, depth_rule, generator, device, dtype, matmul_dtype)`` -> every
    #: non-head tensor of the target in timm keys. Methods without scalers ignore init/scalers/depth_rule;
    #: ``matmul_dtype`` is the dtype the GEMMs run in (``wavehub.device.matmul_dtype``; None = ``dtype``).
    compose: Callable[..., dict[str, Any]]
    #: ``(state, arch, **options) -> (tensors, block)``: a learngene from an ancestry state dict (timm keys,
    #: layer scale folded, pos_embed on the aux grid) without training. ``block`` is config.json's ``<name>``. Options are
    #: the method's own (WAVE: template_size, templates, bias_templates); others are ignored.
    extract: Callable[..., tuple[dict[str, Any], dict[str, Any]]]
    #: ``(cfg) -> dict``: the sizes this learngene serves (config.json's ``serves``: widths, depths, ...).
    serves: Callable[[Config], dict[str, Any]]
    #: Whether targets get per-size scalers: stage 2 (``wavehub.fit``) and banks need them.
    has_scalers: bool = False
    #: Whether ``compose`` takes a ``depth_rule`` (how aux layers are placed on the target's depth).
    depth_rule: bool = False
    #: Whether ``extract`` can be calibrated on images (``wavehub.calibrate``).
    calibrates: bool = False
    #: The keyword options ``extract`` and ``distill_init`` take (and a rebuild command records), in CLI order.
    options: tuple[str, ...] = ()
    #: What ``extract`` does, for progress lines ("decompose (NKP-SVD)").
    extract_label: str = "extract"
    #: Stage 1 (``wavehub build``): ``(arch, state | None, *, generator, **options) -> (tensors, block)``, the
    #: aux model's starting point, extracted from ``state`` or random when it is None. None: not distillable.
    distill_init: Callable[..., tuple[dict[str, Any], dict[str, Any]]] | None = None
    #: Stage 1: ``(model, spec) -> tensors``, the learngene tensors of a trained aux model (float32, CPU, detached
    #: copies). The model is the build's trainable module (WAVE: ``WaveModel``; TLEG: one with ``tensors()``).
    export: Callable[[Any, Target], dict[str, Any]] | None = None

    @classmethod
    def of_module(cls, module: ModuleType) -> Method:
        """The record a method's module describes: each function field is the module's function of that name
        (``distill_init`` and ``export`` may be absent), each other field the upper-case constant (``NAME``,
        ``SUMMARY``, and where the default does not hold ``HAS_SCALERS``, ``OPTIONS``, ...)."""
        found = {}
        for f in fields(cls):
            value = getattr(module, f.name if f.name in HOOKS else f.name.upper(), MISSING)
            if value is not MISSING:
                found[f.name] = value
        return cls(**found)

    @property
    def distillable(self) -> bool:
        """Whether ``wavehub build`` can train a learngene of this method."""
        return self.distill_init is not None and self.export is not None


def tensor_mismatch(tensors: Mapping[str, Any], want: Mapping[str, tuple[int, ...]]) -> str | None:
    """What keeps stored ``tensors`` from being the ones a method reads (``want``: its expected shapes), or None:
    exactly those names, each of its shape, floating point and finite. The readers of the learngene file and of
    the bank each put it in their own error."""
    import torch

    missing, extra = sorted(set(want) - set(tensors)), sorted(set(tensors) - set(want))
    if missing or extra:
        return f"tensor names do not match: missing {_few(missing)}, unexpected {_few(extra)}"
    for k, shape in want.items():
        t = tensors[k]
        if tuple(t.shape) != tuple(shape):
            return f"tensor {k} has shape {tuple(t.shape)}, expected {tuple(shape)}"
        if not t.is_floating_point():
            return f"tensor {k} has dtype {t.dtype}, expected a floating-point dtype"
        if not bool(torch.isfinite(t).all()):
            return f"tensor {k} contains NaN or infinite values"
    return None


def _few(names: list[str]) -> str:
    return f"{names[:4]}{'...' if len(names) > 4 else ''}"
