"""WAVE: size-agnostic weight templates + size-specific Kronecker weight scalers.

Per weight type ★ (qkv, proj, fc1, fc2, patch_embed): ``W_l = Σ_t S_{l,t} ⊗ T_t``; biases use the 1-D rule
``b_l = Σ_t s_{l,t} ⊗ b_t``. Templates are shared by every layer and every target size; only scalers depend on
the target. LayerNorms, pos_embed and cls_token are "aux extras" (the aux model's own tensors), resampled
with the *same* block selection as the weights so residual-stream channels stay consistent.

Tensor names in a WAVE learngene:
  ``templates.<type>`` (N, w1, w2), ``templates.<type>.bias`` (Nb, w1),
  ``aux.scalers.<type>`` (L, N, m1/w1, m2/w2), ``aux.scalers.<type>.bias`` (L, Nb, m1/w1)  (L = 1 for patch_embed),
  ``aux.norm1.weight`` … (L_aux, D_aux), ``aux.norm.weight/bias`` (D_aux,), ``aux.pos_embed``, ``aux.cls_token``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ArgumentError, ArtifactFormatError, SpecError
from .base import Aux, Config, Target, View
from .embed import patch_weight, resample_pos_embed
from .kron import compose_layers, compose_vector, nkp_svd, weighted_nkp
from .resample import DEFAULT_DEPTH_RULE, interp_depth, resolve_depth_rule, section_indices, uniform_indices

__all__ = [
    "WeightType",
    "TYPES",
    "BLOCK_TYPES",
    "NORM_KEYS",
    "TypeInfo",
    "WaveBlock",
    "wave_block",
    "wave_config",
    "check_spec",
    "target_scalers",
    "select_width",
    "target_extras",
    "compose_weights",
    "extract",
    "random_learngene",
    "expected_shapes",
    "scaler_count",
    "DEFAULT_DEPTH_RULE",
    "resolve_depth_rule",
    "compose",
    "validate_block",
    "serves",
    "distill_init",
    "export",
    "parse_templates",
]

# what Method.of_module reads besides the functions named after its fields
NAME = "wave"
SUMMARY = "shared Kronecker templates + per-size scalers (any width the templates tile, any depth)"
HAS_SCALERS = DEPTH_RULE = CALIBRATES = True
OPTIONS = ("template_size", "templates", "bias_templates")
EXTRACT_LABEL = "decompose (NKP-SVD)"


@dataclass(frozen=True)
class WeightType:
    """How one templated weight sits in a timm ViT: its key, row/column axes and q/k/v sections."""

    key: str  # state-dict prefix, "{l}" for the layer index
    rows: str  # axis kind of the output dim: "D" (residual) or "H" (mlp hidden)
    cols: str  # axis kind of the input dim: "D", "H" or "in" (patch pixels, never resampled)
    sections: int = 1  # qkv rows are [q; k; v]
    per_layer: bool = True


TYPES: dict[str, WeightType] = {
    "qkv": WeightType("blocks.{l}.attn.qkv", "D", "D", sections=3),
    "proj": WeightType("blocks.{l}.attn.proj", "D", "D"),
    "fc1": WeightType("blocks.{l}.mlp.fc1", "H", "D"),
    "fc2": WeightType("blocks.{l}.mlp.fc2", "D", "H"),
    "patch_embed": WeightType("patch_embed.proj", "D", "in", per_layer=False),
}
BLOCK_TYPES = ("qkv", "proj", "fc1", "fc2")
NORM_KEYS = ("norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias")


@dataclass(frozen=True)
class TypeInfo:
    """One weight type's entry in the ``wave`` block: template shape (w1, w2) and template counts."""

    w1: int
    w2: int
    n: int
    bias_n: int

    @classmethod
    def from_dict(cls, tc: Mapping[str, Any]) -> TypeInfo:
        return cls(w1=tc["w1"], w2=tc["w2"], n=tc["n"], bias_n=tc["bias_n"])


@dataclass(frozen=True)
class WaveBlock:
    """config.json's ``wave`` block, typed (validated by :func:`validate_block` when it came from a file)."""

    template_size: int
    types: Mapping[str, TypeInfo]

    @classmethod
    def from_dict(cls, block: Mapping[str, Any]) -> WaveBlock:
        return cls(
            template_size=block["template_size"],
            types={k: TypeInfo.from_dict(v) for k, v in block["types"].items()},
        )


def wave_block(cfg: Config) -> WaveBlock:
    """The typed ``wave`` block of a learngene's config (the dict stays the record config.json writes)."""
    return WaveBlock.from_dict(cfg.block)


def _dims(kind: str, width: int, hidden: int, in_dim: int) -> int:
    return {"D": width, "H": hidden, "in": in_dim}[kind]


def parse_templates(value: str | int | dict) -> int | dict[str, int]:
    """``"64"`` or ``"qkv=192,proj=64,fc1=192,fc2=160,patch_embed=6"`` -> int or per-type dict."""
    if isinstance(value, (int, dict)):
        return value
    value = str(value).strip()
    if "=" not in value:
        try:
            return int(value)
        except ValueError as e:
            raise ArgumentError(
                f"templates={value!r} is not a number",
                "Pass e.g. 64 or qkv=192,proj=64,...",
                argument="templates",
            ) from e
    out: dict[str, int] = {}
    default = None
    for part in value.split(","):
        k, _, v = part.partition("=")
        k = k.strip()
        if k not in TYPES and k != "default":
            raise ArgumentError(
                f"unknown weight type {k!r} in templates={value!r}",
                f"Types are: {', '.join(TYPES)}.",
                argument="templates",
            )
        try:
            n = int(v)
        except ValueError as e:
            raise ArgumentError(
                f"templates={value!r}: {v!r} is not a number", "Pass e.g. qkv=192.", argument="templates"
            ) from e
        if k == "default":
            default = n
        else:
            out[k] = n
    missing = [t for t in TYPES if t not in out]
    if missing and default is None:
        raise ArgumentError(
            f"templates={value!r} gives no count for {', '.join(missing)}",
            "Add them or a default=N entry.",
            argument="templates",
        )
    return {t: out.get(t, default) for t in TYPES}


def wave_config(
    arch: Aux,
    template_size: int = 64,
    templates: int | dict[str, int] = 16,
    bias_templates: int | None = None,
) -> dict:
    """The ``wave`` block of config.json: per type w1, w2, N (and Nb for biases), and the composition rule."""
    w = template_size
    pe_in = arch.in_chans * arch.patch_size**2
    types = {}
    for name in TYPES:
        n = templates[name] if isinstance(templates, dict) else templates
        w2 = pe_in if name == "patch_embed" else w
        types[name] = {"w1": w, "w2": w2, "n": int(n), "bias_n": int(bias_templates or w)}
    return {
        "order": "S_kron_T",
        "template_size": w,
        "types": types,
        "bias": "template",
        "norms": "aux",
        "pos_embed": "aux",
    }


def check_spec(cfg: Config, spec: Target) -> None:
    """Refuse sizes the templates cannot tile, before any allocation."""
    w = wave_block(cfg).template_size
    hidden = spec.mlp_hidden
    if spec.width % w or hidden % w:
        lo = max(w, spec.width // w * w)
        raise SpecError(
            f"width={spec.width} (mlp hidden {hidden}) is not a multiple of the template size {w}",
            f"Use a width that is a multiple of {w}, e.g. {lo} or {lo + w}.",
        )
    aux = cfg.aux
    if spec.mlp_ratio != aux.mlp_ratio and (spec.width * spec.mlp_ratio) % w:
        raise SpecError(
            f"mlp_ratio={spec.mlp_ratio} gives a hidden size not divisible by {w}",
            f"Use mlp_ratio={aux.mlp_ratio}.",
        )


def _axis_index(kind: str, src: dict, dst: dict, sections: int, device) -> torch.Tensor | None:
    """Block indices along one axis of a scaler grid (None: unchanged)."""
    if kind == "in" or src[kind] == dst[kind]:
        return None
    return section_indices(src[kind] * sections, dst[kind] * sections, sections, device)


def _grids(cfg: Config, spec: Target | None) -> tuple[dict, dict]:
    """Block counts of each axis kind in the aux model and in the target."""
    w = wave_block(cfg).template_size
    aux = cfg.aux
    src = {"D": aux.width // w, "H": aux.mlp_hidden // w}
    dst = src if spec is None else {"D": spec.width // w, "H": spec.mlp_hidden // w}
    return src, dst


def target_scalers(
    tensors: dict[str, torch.Tensor],
    cfg: Config,
    spec: Target,
    *,
    init: str = "resample",
    generator: torch.Generator | None = None,
    device=None,
    dtype=None,
    depth_rule: str | None = None,
) -> dict[str, torch.Tensor]:
    """Scalers for a target: the aux scalers resampled over depth (``depth_rule``, see
    :func:`~wavehub.methods.resample.depth_positions`) and width (uniform blocks, per q/k/v section), or
    ``init="random"`` N(0, 1/N). Keys: ``<type>`` and ``<type>.bias``."""
    rule = resolve_depth_rule(depth_rule)
    src, dst = _grids(cfg, spec)
    out: dict[str, torch.Tensor] = {}
    for name, wt in TYPES.items():
        for suffix in ("", ".bias"):
            s = tensors[f"aux.scalers.{name}{suffix}"].to(device=device, dtype=dtype)
            L = spec.depth if wt.per_layer else 1
            if init == "random":
                n = s.shape[1]
                p = _dims(wt.rows, dst["D"], dst["H"], 1) * wt.sections
                shape = (L, n, p) if suffix else (L, n, p, _dims(wt.cols, dst["D"], dst["H"], 1))
                r = torch.randn(shape, generator=generator, dtype=torch.float32) / math.sqrt(n)
                out[name + suffix] = r.to(device=device, dtype=s.dtype)
                continue
            if init != "resample":
                raise SpecError(f"unknown scaler init {init!r}", "Use init='resample' or 'random'.")
            if wt.per_layer:
                s = interp_depth(s, L, rule)
            ri = _axis_index(wt.rows, src, dst, wt.sections, s.device)
            if ri is not None:
                s = s.index_select(2, ri)
            if not suffix:
                ci = _axis_index(wt.cols, src, dst, 1, s.device)
                if ci is not None:
                    s = s.index_select(3, ci)
            out[name + suffix] = s
    return out


def select_width(v: torch.Tensor, w: int, n_dst_blocks: int) -> torch.Tensor:
    """Block-select the last axis of ``(..., D_src)`` to ``n_dst_blocks`` blocks of w channels (the residual
    stream's channel rule, shared by norms, pos_embed and cls_token)."""
    n_src = v.shape[-1] // w
    if n_src == n_dst_blocks:
        return v
    idx = uniform_indices(n_src, n_dst_blocks, v.device)
    return v.reshape(*v.shape[:-1], n_src, w).index_select(-2, idx).reshape(*v.shape[:-1], n_dst_blocks * w)


def target_extras(
    tensors: dict[str, torch.Tensor],
    cfg: Config,
    spec: Target,
    *,
    depth_rule: str | None = None,
) -> dict[str, torch.Tensor]:
    """Norms, pos_embed and cls_token for the target (timm keys), from the aux extras, on their device and in
    their dtype (:func:`compose` moves them first).

    Per-layer norms are resampled over depth by the same ``depth_rule`` as the scalers (a layer's norms stay
    with its weights); every width axis uses the same block selection as the residual-stream weights.
    pos_embed is resampled to the target grid by timm's rule."""
    rule = resolve_depth_rule(depth_rule)
    w = wave_block(cfg).template_size
    nb = spec.width // w
    out: dict[str, torch.Tensor] = {}
    for k in NORM_KEYS:
        v = select_width(interp_depth(tensors[f"aux.{k}"], spec.depth, rule), w, nb)
        for layer in range(spec.depth):
            out[f"blocks.{layer}.{k}"] = v[layer].clone()
    final = spec.final_norm  # timm's rule, in one place (spec.final_norm_name)
    for p in ("weight", "bias"):
        out[f"{final}.{p}"] = select_width(tensors[f"aux.norm.{p}"], w, nb).clone()
    pos = select_width(tensors["aux.pos_embed"], w, nb)
    out["pos_embed"] = resample_pos_embed(pos, cfg.aux, spec)
    if spec.class_token:
        if "aux.cls_token" in tensors:
            out["cls_token"] = select_width(tensors["aux.cls_token"], w, nb).clone()
        else:
            out["cls_token"] = pos.new_zeros(1, 1, spec.width)
    return out


def compose_weights(
    tensors: dict[str, torch.Tensor],
    scalers: dict[str, torch.Tensor],
    cfg: Config,
    spec: Target,
    *,
    device=None,
    dtype=None,
    matmul_dtype: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """Compose every templated weight and bias of the target into timm keys (one GEMM per type), in ``dtype``.

    The GEMMs run in ``matmul_dtype`` (default ``dtype``; :func:`wavehub.device.matmul_dtype` picks fp32 for
    a low-precision result on a CPU); the copy that lays out each weight casts to ``dtype``, so the result is
    rounded once."""
    out_dtype = dtype or tensors[f"templates.{next(iter(TYPES))}"].dtype
    mm = matmul_dtype or out_dtype
    out: dict[str, torch.Tensor] = {}
    for name, wt in TYPES.items():
        t = tensors[f"templates.{name}"].to(device=device, dtype=mm)
        tb = tensors[f"templates.{name}.bias"].to(device=device, dtype=mm)
        Ws = compose_layers(scalers[name].to(mm), t, out_dtype=out_dtype)  # one GEMM, one copy per layer
        b = compose_vector(scalers[name + ".bias"].to(mm), tb).to(out_dtype)
        if not wt.per_layer:
            out[f"{wt.key}.weight"] = patch_weight(Ws[0], cfg.aux, spec)
            out[f"{wt.key}.bias"] = b[0].clone()
            continue
        for layer, W in enumerate(Ws):
            k = wt.key.format(l=layer)
            out[f"{k}.weight"] = W
            out[f"{k}.bias"] = b[layer].clone()
    return out


def expected_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    """Every tensor a WAVE learngene must hold, with its shape (for validation)."""
    aux = cfg.aux
    types = wave_block(cfg).types
    src, _ = _grids(cfg, None)
    L, D = aux.depth, aux.width
    shapes: dict[str, tuple[int, ...]] = {}
    for name, wt in TYPES.items():
        tc = types[name]
        p = _dims(wt.rows, src["D"], src["H"], 1) * wt.sections
        q = _dims(wt.cols, src["D"], src["H"], tc.w2) if wt.cols != "in" else 1
        Lt = L if wt.per_layer else 1
        shapes[f"templates.{name}"] = (tc.n, tc.w1, tc.w2)
        shapes[f"templates.{name}.bias"] = (tc.bias_n, tc.w1)
        shapes[f"aux.scalers.{name}"] = (Lt, tc.n, p, q)
        shapes[f"aux.scalers.{name}.bias"] = (Lt, tc.bias_n, p)
    for k in NORM_KEYS:
        shapes[f"aux.{k}"] = (L, D)
    shapes["aux.norm.weight"] = (D,)
    shapes["aux.norm.bias"] = (D,)
    prefix = 1 if aux.has_class_token else 0
    shapes["aux.pos_embed"] = (1, prefix + aux.grid**2, D)
    if prefix:
        shapes["aux.cls_token"] = (1, 1, D)
    return shapes


def scaler_count(cfg: Config, spec: Target) -> int:
    """Number of size-specific numbers (scalers) a target needs: what stage 2 trains."""
    _, dst = _grids(cfg, spec)
    types = wave_block(cfg).types
    n = 0
    for name, wt in TYPES.items():
        tc = types[name]
        p = _dims(wt.rows, dst["D"], dst["H"], 1) * wt.sections
        q = _dims(wt.cols, dst["D"], dst["H"], 1)
        L = spec.depth if wt.per_layer else 1
        n += L * (tc.n * p * q + tc.bias_n * p)
    return n


def extract(
    state_dict: dict[str, torch.Tensor],
    arch: Aux,
    *,
    template_size: int = 64,
    templates: int | str | dict[str, int] = 16,
    bias_templates: int | None = None,
    covariance: Mapping[str, torch.Tensor] | None = None,
    iters: int = 8,
    **_: object,
) -> tuple[dict[str, torch.Tensor], dict]:
    """Learngene from an ancestry ViT (timm keys, layer scale already folded in).

    Each type's w1×w2 blocks across all layers are decomposed by one shared nearest-Kronecker-product SVD:
    the top-N components are the templates, the projections the aux scalers. Biases use the same on their
    w1-blocks. With ``covariance`` (``{type: (L, d_in, d_in)}`` second moments of each layer's inputs) the
    weights of those types are then refined for the output error by ``iters`` rounds of
    :func:`~wavehub.methods.kron.weighted_nkp`. Returns ``(tensors, wave_cfg)``.
    """
    # the dict config.json will hold
    block = wave_config(arch, template_size, parse_templates(templates), bias_templates)
    L = arch.depth
    out: dict[str, torch.Tensor] = {}
    for name, wt in TYPES.items():
        tc = block["types"][name]
        keys = [wt.key.format(l=i) for i in range(L)] if wt.per_layer else [wt.key]
        # never store more templates than the block matrix has rank (patch_embed has only width/w rows)
        m1 = state_dict[keys[0] + ".weight"].shape[0]
        n_rows = len(keys) * (m1 // tc["w1"]) * (state_dict[keys[0] + ".weight"][0].numel() // tc["w2"])
        tc["n"] = min(tc["n"], n_rows, tc["w1"] * tc["w2"])
        tc["bias_n"] = min(tc["bias_n"], len(keys) * (m1 // tc["w1"]), tc["w1"])
        W = torch.stack(
            [state_dict[k + ".weight"].reshape(state_dict[k + ".weight"].shape[0], -1) for k in keys]
        )
        B = torch.stack([state_dict[k + ".bias"] for k in keys])
        S, T = nkp_svd(W.float(), tc["w1"], tc["w2"], tc["n"])
        if covariance is not None and name in covariance:
            S, T = weighted_nkp(W.float(), covariance[name], S, T, iters=iters)
        out[f"templates.{name}"], out[f"aux.scalers.{name}"] = T, S
        Sb, Tb = nkp_svd(B.float()[:, :, None], tc["w1"], 1, tc["bias_n"])
        out[f"templates.{name}.bias"] = Tb[:, :, 0].contiguous()
        out[f"aux.scalers.{name}.bias"] = Sb[..., 0].contiguous()
    for k in NORM_KEYS:
        out[f"aux.{k}"] = torch.stack([state_dict[f"blocks.{i}.{k}"] for i in range(L)]).float()
    for p in ("weight", "bias"):
        out[f"aux.norm.{p}"] = state_dict[f"norm.{p}"].float().clone()
    out["aux.pos_embed"] = state_dict["pos_embed"].float().clone()
    if arch.has_class_token:
        out["aux.cls_token"] = state_dict["cls_token"].float().clone()
    return out, block


def random_learngene(
    arch: Aux,
    *,
    template_size: int = 64,
    templates: int | dict[str, int] = 16,
    bias_templates: int | None = None,
    generator: torch.Generator | None = None,
    std: float = 0.02,
) -> tuple[dict[str, torch.Tensor], dict]:
    """Random templates/scalers scaled so composed weights have std ≈ ``std`` (distillation from scratch)."""
    wave = wave_config(arch, template_size, templates, bias_templates)
    out: dict[str, torch.Tensor] = {}
    for k, shape in expected_shapes(View(arch, wave)).items():
        if k.startswith("templates.") and not k.endswith(".bias"):
            # unit-variance templates; scalers N(0, std²/N) => Σ_t S_t T_t has std ≈ std
            out[k] = torch.randn(shape, generator=generator)
        elif k.startswith("aux.scalers.") and not k.endswith(".bias"):
            out[k] = torch.randn(shape, generator=generator) * (std / math.sqrt(shape[1]))
        elif k.endswith(".bias"):
            out[k] = torch.zeros(shape)
        elif ".norm" in k or k.startswith("aux.norm"):
            out[k] = torch.ones(shape) if k.endswith("weight") else torch.zeros(shape)
        else:  # pos_embed, cls_token
            out[k] = torch.randn(shape, generator=generator) * std
    return out, wave


def compose(
    tensors: dict[str, torch.Tensor],
    cfg: Config,
    spec: Target,
    *,
    scalers: dict[str, torch.Tensor] | None = None,
    init: str = "resample",
    depth_rule: str | None = None,
    generator: torch.Generator | None = None,
    device=None,
    dtype=None,
    matmul_dtype: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """Every non-head tensor of the target: scalers (given, or from the aux ones by ``init``), composed weights,
    then the extras. ``tensors``/``cfg`` are the source the target starts from (the learngene, or a bank entry
    seen as the aux model); resampling runs in ``matmul_dtype`` and every tensor ends in ``dtype``."""
    mm = matmul_dtype or dtype
    if scalers is None:
        scalers = target_scalers(
            tensors, cfg, spec, init=init, generator=generator, device=device, dtype=mm, depth_rule=depth_rule
        )
    sd = compose_weights(tensors, scalers, cfg, spec, device=device, dtype=dtype, matmul_dtype=mm)
    # the aux extras are every aux tensor but the scalers: only they move to the target's device and dtype
    aux = {
        k: v.to(device=device, dtype=mm)
        for k, v in tensors.items()
        if k.startswith("aux.") and not k.startswith("aux.scalers.")
    }
    extras = target_extras(aux, cfg, spec, depth_rule=depth_rule)
    sd.update({k: v.to(dtype) for k, v in extras.items()})
    return sd


def _pos_int(d: dict, key: str, where: str, limit: int) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not 0 < v <= limit:
        raise ArtifactFormatError(f"{where}.{key} must be a positive integer, got {v!r}")
    return v


def validate_block(arch: Aux, wave: Any) -> None:
    """The ``wave`` block (the raw JSON value) of a config whose aux architecture is already validated: every
    type present, with template sizes that tile the aux model (so later shape arithmetic cannot fail)."""
    if not isinstance(wave, dict) or not isinstance(wave.get("types"), dict):
        raise ArtifactFormatError("config.json lacks the 'wave' block with per-type template settings")
    if wave.get("order", "S_kron_T") != "S_kron_T":
        raise ArtifactFormatError(f"unsupported Kronecker order {wave.get('order')!r}")
    w = _pos_int(wave, "template_size", "wave", limit=1 << 12)
    if arch.width % w or arch.mlp_hidden % w:
        raise ArtifactFormatError("wave.template_size must divide the aux width and mlp hidden size")
    for name in TYPES:
        tc = wave["types"].get(name)
        if not isinstance(tc, dict):
            raise ArtifactFormatError(f"wave.types.{name} is missing")
        for k in ("w1", "w2", "n", "bias_n"):
            _pos_int(tc, k, f"wave.types.{name}", limit=1 << 16)
        if tc["w1"] != w:
            raise ArtifactFormatError(f"wave.types.{name}.w1 must equal wave.template_size")
        want_w2 = arch.in_chans * arch.patch_size**2 if name == "patch_embed" else w
        if tc["w2"] != want_w2:
            raise ArtifactFormatError(f"wave.types.{name}.w2 must be {want_w2}")


def serves(cfg: Config) -> dict:
    """Any width the templates tile, any depth."""
    w = wave_block(cfg).template_size
    return {"widths": f"multiples of {w}", "width_multiple": w, "depths": ">= 1", "min_depth": 1}


def distill_init(
    arch: Aux,
    state: dict[str, torch.Tensor] | None,
    *,
    generator: torch.Generator | None = None,
    template_size: int = 64,
    templates: int | str | dict[str, int] = 16,
    bias_templates: int | None = None,
    **_: object,
) -> tuple[dict[str, torch.Tensor], dict]:
    """Stage 1's start: the data-free extraction of ``state``, or random templates and scalers (None)."""
    templates = parse_templates(templates)
    if state is not None:
        return extract(
            state, arch, template_size=template_size, templates=templates, bias_templates=bias_templates
        )
    return random_learngene(
        arch,
        template_size=template_size,
        templates=templates,
        bias_templates=bias_templates,
        generator=generator,
    )


def export(model, spec: Target) -> dict[str, torch.Tensor]:
    """A trained ``WaveModel``'s learngene: its templates and scalers, and the ViT's norms and embeddings as the
    aux extras (float32 CPU copies)."""
    t: dict[str, torch.Tensor] = {}
    for name in TYPES:
        t[f"templates.{name}"] = model.templates[name]
        t[f"templates.{name}.bias"] = model.templates[f"{name}_bias"]
        t[f"aux.scalers.{name}"] = model.scalers[name]
        t[f"aux.scalers.{name}.bias"] = model.scalers[f"{name}_bias"]
    vit = model.vit
    for k in NORM_KEYS:
        mod, p = k.split(".")
        t[f"aux.{k}"] = torch.stack([getattr(getattr(b, mod), p) for b in vit.blocks])
    final = getattr(vit, spec.final_norm)
    t["aux.norm.weight"], t["aux.norm.bias"] = final.weight, final.bias
    t["aux.pos_embed"] = vit.pos_embed
    if spec.class_token:
        t["aux.cls_token"] = vit.cls_token
    return {k: v.detach().float().cpu().clone() for k, v in t.items()}
