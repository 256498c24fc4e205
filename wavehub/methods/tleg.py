"""TLEG (Xia et al., AAAI 2024): ``θ_l = θ_base + (l/L)·θ_ilayer`` for every block parameter, exactly as the
official code does it (0-indexed l, L = the target's own depth, so the coefficient runs over [0, 1)).

Tensor names: ``tleg.base.<param>`` / ``tleg.ilayer.<param>`` for each block parameter, ``shared.<key>`` for
patch_embed, pos_embed, cls_token and the final norm (copied into ``fc_norm`` for avg-pooled targets).
TLEG varies depth only: the width must equal the aux width.
"""

from __future__ import annotations

import torch

from ..errors import ArtifactFormatError, SpecError
from .base import Aux, Config, Target, View
from .embed import outer_shapes, resample_pos_embed

__all__ = [
    "BLOCK_PARAMS",
    "SHARED",
    "coefficients",
    "check_spec",
    "compose_state_dict",
    "compose",
    "least_squares",
    "extract",
    "expected_shapes",
    "validate_block",
    "serves",
    "distill_init",
    "export",
]

# what Method.of_module reads besides the functions named after its fields
NAME = "tleg"
SUMMARY = "a linear expansion over depth, θ_base + (l/L)·θ_ilayer (the aux width, any depth)"
EXTRACT_LABEL = "least squares"

BLOCK_PARAMS = (
    "norm1.weight",
    "norm1.bias",
    "attn.qkv.weight",
    "attn.qkv.bias",
    "attn.proj.weight",
    "attn.proj.bias",
    "norm2.weight",
    "norm2.bias",
    "mlp.fc1.weight",
    "mlp.fc1.bias",
    "mlp.fc2.weight",
    "mlp.fc2.bias",
)
SHARED = ("patch_embed.proj.weight", "patch_embed.proj.bias", "pos_embed", "norm.weight", "norm.bias")


def coefficients(depth: int) -> torch.Tensor:
    """``l / L`` for l = 0..L-1 (TLEG's ``gene_tranfer``)."""
    return torch.arange(depth, dtype=torch.float64) / depth


def check_spec(cfg: Config, spec: Target) -> None:
    aux = cfg.aux
    if spec.width != aux.width or spec.mlp_hidden != aux.mlp_hidden:
        raise SpecError(
            f"TLEG learngenes expand depth only: width must be {aux.width}, got {spec.width}",
            f"Use width={aux.width}, or a WAVE learngene for other widths.",
        )
    if spec.patch_size != aux.patch_size or spec.in_chans != aux.in_chans:
        raise SpecError(
            "TLEG learngenes keep the aux patch embedding",
            f"Use patch_size={aux.patch_size} and in_chans={aux.in_chans}.",
        )


def compose_state_dict(
    tensors: dict[str, torch.Tensor], cfg: Config, spec: Target, *, device=None, dtype=None
) -> dict[str, torch.Tensor]:
    """All non-head weights of an L-layer descendant (``utils.gene_tranfer`` of the TLEG code)."""
    coef = coefficients(spec.depth)
    out: dict[str, torch.Tensor] = {}
    for p in BLOCK_PARAMS:
        base = tensors[f"tleg.base.{p}"].to(device=device, dtype=dtype)
        inc = tensors[f"tleg.ilayer.{p}"].to(device=device, dtype=dtype)
        for layer in range(spec.depth):
            out[f"blocks.{layer}.{p}"] = torch.add(base, inc, alpha=float(coef[layer]))
    out["patch_embed.proj.weight"] = tensors["shared.patch_embed.proj.weight"].to(device=device, dtype=dtype)
    out["patch_embed.proj.bias"] = tensors["shared.patch_embed.proj.bias"].to(device=device, dtype=dtype)
    final = spec.final_norm  # timm's rule, in one place (spec.final_norm_name)
    for p in ("weight", "bias"):
        out[f"{final}.{p}"] = tensors[f"shared.norm.{p}"].to(device=device, dtype=dtype)
    out["pos_embed"] = resample_pos_embed(
        tensors["shared.pos_embed"].to(device=device, dtype=dtype), cfg.aux, spec
    )
    if spec.class_token:
        cls = tensors.get("shared.cls_token")
        out["cls_token"] = (
            cls.to(device=device, dtype=dtype)
            if cls is not None
            else torch.zeros(1, 1, spec.width, device=device, dtype=dtype or torch.float32)
        )
    return out


def least_squares(state_dict: dict[str, torch.Tensor], arch: Aux) -> dict[str, torch.Tensor]:
    """Data-free TLEG learngene: the least-squares line ``θ_base + (l/L)·θ_ilayer`` through the ancestry's
    per-layer parameters (the trained-by-distillation learngene is ``wavehub build --method tleg``)."""
    L = arch.depth
    x = coefficients(L)
    xc = x - x.mean()
    out: dict[str, torch.Tensor] = {}
    for p in BLOCK_PARAMS:
        ys = torch.stack([state_dict[f"blocks.{i}.{p}"].double() for i in range(L)])
        shape = (L,) + (1,) * (ys.dim() - 1)
        ym = ys.mean(0)
        slope = ((xc.reshape(shape) * (ys - ym)).sum(0) / (xc**2).sum()) if L > 1 else torch.zeros_like(ym)
        out[f"tleg.base.{p}"] = (ym - slope * x.mean()).float()
        out[f"tleg.ilayer.{p}"] = slope.float()
    for k in SHARED:
        out[f"shared.{k}"] = state_dict[k].float().clone()
    if arch.has_class_token and "cls_token" in state_dict:
        out["shared.cls_token"] = state_dict["cls_token"].float().clone()
    return out


def expected_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    aux = cfg.aux
    D, H = aux.width, aux.mlp_hidden
    blk = {
        "norm1.weight": (D,),
        "norm1.bias": (D,),
        "attn.qkv.weight": (3 * D, D),
        "attn.qkv.bias": (3 * D,),
        "attn.proj.weight": (D, D),
        "attn.proj.bias": (D,),
        "norm2.weight": (D,),
        "norm2.bias": (D,),
        "mlp.fc1.weight": (H, D),
        "mlp.fc1.bias": (H,),
        "mlp.fc2.weight": (D, H),
        "mlp.fc2.bias": (D,),
    }
    shapes = {f"tleg.{kind}.{p}": s for p, s in blk.items() for kind in ("base", "ilayer")}
    return shapes | outer_shapes(aux, "shared.")


def validate_block(arch: Aux, block: object) -> None:
    """The optional ``tleg`` block is descriptive only: it must be an object when present."""
    if block is not None and not isinstance(block, dict):
        raise ArtifactFormatError("config.json tleg must be an object")


def serves(cfg: Config) -> dict:
    """The aux width only, any depth."""
    return {"widths": str(cfg.aux.width), "depths": ">= 1", "min_depth": 1}


def compose(
    tensors: dict[str, torch.Tensor], cfg: Config, spec: Target, *, device=None, dtype=None, **_: object
) -> dict[str, torch.Tensor]:
    return compose_state_dict(tensors, cfg, spec, device=device, dtype=dtype)


def extract(state: dict[str, torch.Tensor], arch: Aux, **_: object) -> tuple[dict[str, torch.Tensor], dict]:
    block = {"coefficient": "l/L (0-indexed l, L = target depth)", "source": "least-squares fit"}
    return least_squares(state, arch), block


def distill_init(
    arch: Aux, state: dict[str, torch.Tensor] | None, *, generator: torch.Generator | None = None, **_: object
) -> tuple[dict[str, torch.Tensor], dict]:
    """Stage 1's start: the least-squares line through ``state``, or TLEG's own init (None): linear weights
    trunc-normal(0.02), biases 0, LayerNorm base 1/0 and increment 0."""
    block = {"coefficient": "l/L (0-indexed l, L = target depth)", "source": "distillation (wavehub build)"}
    if state is not None:
        return least_squares(state, arch), block
    t: dict[str, torch.Tensor] = {}
    for k, shape in expected_shapes(View(arch, {})).items():
        if "norm" in k and k.endswith("weight"):
            t[k] = torch.ones(shape) if (".base." in k or k.startswith("shared.")) else torch.zeros(shape)
        elif k.endswith("bias"):
            t[k] = torch.zeros(shape)
        else:
            t[k] = torch.nn.init.trunc_normal_(torch.empty(shape), std=0.02, generator=generator)
    return t, block


def export(model, spec: Target) -> dict[str, torch.Tensor]:
    """A trained TLEG module's tensors (``model.tensors()``), as float32 CPU copies."""
    return {k: v.detach().float().cpu().clone() for k, v in model.tensors().items()}
