"""Weight Selection (Xu et al., ICLR 2024): initialize a smaller model by *selecting* weights of a larger one.

Layer selection is first-N (student block i <- teacher block i); element selection is the uniform rule of
``uniform_element_selection`` applied per dimension, with the same indices for every tensor that shares a
dimension (consistency). qkv rows are selected per q/k/v section so the partition survives non-integer ratios.
Tensor names: ``teacher.<timm key>`` (the whole teacher state dict, layer scale folded in).
"""

from __future__ import annotations

import torch

from ..errors import ArtifactFormatError, SpecError
from .base import Aux, Config, Target, View
from .embed import outer_shapes, patch_weight, resample_pos_embed
from .resample import section_indices, uniform_indices

__all__ = [
    "check_spec",
    "select_tensor",
    "compose_state_dict",
    "compose",
    "expected_shapes",
    "BLOCK_PARAMS",
    "extract",
    "validate_block",
    "serves",
]

# what Method.of_module reads besides the functions named after its fields
NAME = "select"
SUMMARY = "Weight Selection: the teacher's first layers and uniformly selected channels"
EXTRACT_LABEL = "select"

BLOCK_PARAMS = {  # param -> per-dimension axis kinds ("D" residual, "H" hidden, "Q" qkv rows)
    "norm1.weight": ("D",),
    "norm1.bias": ("D",),
    "attn.qkv.weight": ("Q", "D"),
    "attn.qkv.bias": ("Q",),
    "attn.proj.weight": ("D", "D"),
    "attn.proj.bias": ("D",),
    "norm2.weight": ("D",),
    "norm2.bias": ("D",),
    "mlp.fc1.weight": ("H", "D"),
    "mlp.fc1.bias": ("H",),
    "mlp.fc2.weight": ("D", "H"),
    "mlp.fc2.bias": ("D",),
}


def check_spec(cfg: Config, spec: Target) -> None:
    aux = cfg.aux
    if spec.depth > aux.depth:
        raise SpecError(
            f"Weight Selection cannot add layers: the teacher has {aux.depth}, asked {spec.depth}",
            f"Use depth <= {aux.depth}, or a WAVE/TLEG learngene for deeper models.",
        )
    if spec.width > aux.width or spec.mlp_hidden > aux.mlp_hidden:
        raise SpecError(
            f"Weight Selection cannot widen: the teacher has width {aux.width}, asked {spec.width}",
            f"Use width <= {aux.width}, or a WAVE learngene for wider models.",
        )


def select_tensor(
    t: torch.Tensor, kinds: tuple[str, ...], src: dict[str, int], dst: dict[str, int]
) -> torch.Tensor:
    """Uniform element selection of each dimension of ``t`` by its axis kind."""
    for dim, kind in enumerate(kinds):
        if src[kind] == dst[kind]:
            continue
        if kind == "Q":
            idx = section_indices(src[kind], dst[kind], 3, t.device)
        else:
            idx = uniform_indices(src[kind], dst[kind], t.device)
        t = t.index_select(dim, idx)
    return t


def compose_state_dict(
    tensors: dict[str, torch.Tensor], cfg: Config, spec: Target, *, device=None, dtype=None
) -> dict[str, torch.Tensor]:
    aux = cfg.aux
    src = {"D": aux.width, "H": aux.mlp_hidden, "Q": 3 * aux.width}
    dst = {"D": spec.width, "H": spec.mlp_hidden, "Q": 3 * spec.width}

    def get(k):
        return tensors[f"teacher.{k}"].to(device=device, dtype=dtype)

    out: dict[str, torch.Tensor] = {}
    for layer in range(spec.depth):
        for p, kinds in BLOCK_PARAMS.items():
            out[f"blocks.{layer}.{p}"] = select_tensor(
                get(f"blocks.{layer}.{p}"), kinds, src, dst
            ).contiguous()
    pe = select_tensor(get("patch_embed.proj.weight"), ("D",), src, dst)
    out["patch_embed.proj.weight"] = patch_weight(pe.reshape(pe.shape[0], -1), aux, spec)
    out["patch_embed.proj.bias"] = select_tensor(get("patch_embed.proj.bias"), ("D",), src, dst).contiguous()
    final = spec.final_norm  # timm's rule, in one place (spec.final_norm_name)
    for p in ("weight", "bias"):
        out[f"{final}.{p}"] = select_tensor(get(f"norm.{p}"), ("D",), src, dst).contiguous()
    pos = get("pos_embed")
    pos = (
        pos.index_select(2, uniform_indices(src["D"], dst["D"], pos.device)) if src["D"] != dst["D"] else pos
    )
    out["pos_embed"] = resample_pos_embed(pos, aux, spec)
    if spec.class_token:
        cls = tensors.get("teacher.cls_token")
        if cls is not None:
            cls = cls.to(device=device, dtype=dtype)
            out["cls_token"] = cls.index_select(
                2, uniform_indices(src["D"], dst["D"], cls.device)
            ).contiguous()
        else:
            out["cls_token"] = torch.zeros(1, 1, spec.width, device=device, dtype=dtype or torch.float32)
    return out


def expected_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    aux = cfg.aux
    D, H = aux.width, aux.mlp_hidden
    size = {"D": D, "H": H, "Q": 3 * D}
    shapes = {}
    for layer in range(aux.depth):
        for p, kinds in BLOCK_PARAMS.items():
            shapes[f"teacher.blocks.{layer}.{p}"] = tuple(size[k] for k in kinds)
    return shapes | outer_shapes(aux, "teacher.")


def extract(state: dict[str, torch.Tensor], arch: Aux, **_: object) -> tuple[dict[str, torch.Tensor], dict]:
    """The teacher itself (every tensor a target may select from), under ``teacher.<timm key>``."""
    keep = {k[len("teacher.") :] for k in expected_shapes(View(arch, {}))}
    block = {"layers": "first-N", "elements": "uniform, per q/k/v section"}
    return {f"teacher.{k}": v for k, v in state.items() if k in keep}, block


def validate_block(arch: Aux, block: object) -> None:
    """The optional ``select`` block is descriptive only: it must be an object when present."""
    if block is not None and not isinstance(block, dict):
        raise ArtifactFormatError("config.json select must be an object")


def serves(cfg: Config) -> dict:
    """Up to the teacher's width and depth: selection cannot grow a model."""
    aux = cfg.aux
    return {"widths": f"<= {aux.width}", "depths": f"1..{aux.depth}", "min_depth": 1, "max_depth": aux.depth}


def compose(
    tensors: dict[str, torch.Tensor], cfg: Config, spec: Target, *, device=None, dtype=None, **_: object
) -> dict[str, torch.Tensor]:
    return compose_state_dict(tensors, cfg, spec, device=device, dtype=dtype)
