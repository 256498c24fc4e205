"""ViTSpec: the size and shape of the model a user asks for, validated before anything is allocated."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .errors import SpecError

__all__ = ["ViTSpec", "ViTShape", "MAX_PARAMS", "FC_NORM_POOLS", "final_norm_name", "vit_param_count"]

# A spec whose weights alone would need more than this many parameters is refused up front: it would
# exhaust memory long before it was useful (ViT-22B is about half of it).
MAX_PARAMS = 40_000_000_000
# The pools timm's VisionTransformer applies its final norm after (``fc_norm``); 'token' and '' norm before.
FC_NORM_POOLS = ("avg", "avgmax", "max")


def final_norm_name(global_pool: str) -> str:
    """``"fc_norm"`` or ``"norm"``: which of a timm ViT's two final norms holds weights for this pool.

    timm's rule (``VisionTransformer.__init__``, ``fc_norm=None``): ``use_fc_norm = global_pool in ('avg',
    'avgmax', 'max')``; the other norm is an Identity. So ``global_pool=''`` (no pooling) uses ``norm``."""
    return "fc_norm" if global_pool in FC_NORM_POOLS else "norm"


def vit_param_count(
    depth: int,
    width: int,
    mlp_ratio: float,
    patch_size: int,
    in_chans: int,
    num_patches: int,
    num_classes: int,
    class_token: bool = True,
) -> int:
    """Exact parameter count of a timm VisionTransformer with qkv/proj/mlp biases (pure arithmetic)."""
    hidden = int(width * mlp_ratio)
    block = (
        3 * width * width
        + 3 * width
        + width * width
        + width
        + 2 * width * hidden
        + hidden
        + width
        + 4 * width
    )
    prefix = 1 if class_token else 0
    embed = (
        width * in_chans * patch_size * patch_size + width + (num_patches + prefix) * width + prefix * width
    )
    head = num_classes * width + num_classes if num_classes > 0 else 0
    return depth * block + embed + 2 * width + head


def _heads_remedy(width: int, num_heads: int, head_dim: int) -> str:
    """Head counts that divide the width (nearest first), or the width those heads would need: never a width
    that only divides by the heads (192 with 5 heads is not 190, which no template size serves)."""
    divisors = sorted(
        (h for h in range(1, width + 1) if width % h == 0), key=lambda h: (abs(h - num_heads), h)
    )
    near = sorted(divisors[:2])
    heads = " or ".join(f"num_heads={h}" for h in near)
    return (
        f"Use {heads} (they divide width={width}), or width={num_heads * head_dim} for {num_heads} heads of "
        f"{head_dim}; leaving num_heads unset picks width // {head_dim}."
    )


class ViTShape:
    """The sizes every description of a ViT derives alike (a target spec, a learngene's aux architecture)."""

    width: int
    mlp_ratio: float
    patch_size: int
    img_size: int

    @property
    def grid(self) -> int:
        return self.img_size // self.patch_size

    @property
    def mlp_hidden(self) -> int:
        return int(self.width * self.mlp_ratio)


@dataclass(frozen=True)
class ViTSpec(ViTShape):
    """What to build. ``None`` fields are filled from the learngene's own architecture (see ``resolve``).

    ``num_heads`` defaults to ``width // head_dim``; ``global_pool`` is timm's ('token' needs the class token).
    """

    depth: int
    width: int
    num_heads: int | None = None
    head_dim: int = 64
    mlp_ratio: float | None = None
    patch_size: int | None = None
    img_size: int | None = None
    in_chans: int | None = None
    num_classes: int = 1000
    global_pool: str | None = None
    class_token: bool | None = None

    def resolve(self, defaults: dict[str, Any]) -> ViTSpec:
        """Fill unset fields from ``defaults`` (a learngene's aux architecture), then validate."""
        filled = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None and f.name in defaults and defaults[f.name] is not None:
                v = defaults[f.name]
            filled[f.name] = v
        if filled["num_heads"] is None and isinstance(filled["width"], int) and filled["head_dim"]:
            filled["num_heads"] = max(1, filled["width"] // filled["head_dim"])
        filled.setdefault("mlp_ratio", 4.0)
        if filled["mlp_ratio"] is None:
            filled["mlp_ratio"] = 4.0
        if filled["global_pool"] is None:
            filled["global_pool"] = "token" if filled["class_token"] in (None, True) else "avg"
        if filled["class_token"] is None:
            filled["class_token"] = filled["global_pool"] == "token"
        for k, d in (("patch_size", 16), ("img_size", 224), ("in_chans", 3)):
            if filled[k] is None:
                filled[k] = d
        spec = ViTSpec(**filled)
        spec.validate()
        return spec

    @property
    def final_norm(self) -> str:
        """The final-norm module name of the timm ViT this spec builds (see :func:`final_norm_name`)."""
        return final_norm_name(self.global_pool)

    def validate(self) -> None:
        """Refuse specs no ViT can have; learngene-specific limits are checked by the method."""
        for name in ("depth", "width", "num_heads", "patch_size", "img_size", "in_chans"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise SpecError(
                    f"{name} must be a positive integer, got {v!r}", "Pass e.g. depth=8, width=384."
                )
        if (
            not isinstance(self.num_classes, int)
            or isinstance(self.num_classes, bool)
            or self.num_classes < 0
        ):
            raise SpecError(
                f"num_classes must be an integer >= 0, got {self.num_classes!r}",
                "Use num_classes=0 for a headless feature extractor.",
            )
        if not isinstance(self.mlp_ratio, (int, float)) or not self.mlp_ratio > 0:
            raise SpecError(f"mlp_ratio must be > 0, got {self.mlp_ratio!r}", "The usual value is 4.0.")
        if self.width % self.num_heads:
            raise SpecError(
                f"num_heads={self.num_heads} does not divide width={self.width}",
                _heads_remedy(self.width, self.num_heads, self.head_dim),
            )
        if self.global_pool not in ("token", "avg", "max", "avgmax", ""):
            raise SpecError(
                f"global_pool={self.global_pool!r} is not supported", "Use 'token' (class token) or 'avg'."
            )
        if self.global_pool == "token" and not self.class_token:
            raise SpecError("global_pool='token' needs class_token=True", "Pass global_pool='avg' instead.")
        if self.img_size % self.patch_size:
            raise SpecError(
                f"img_size={self.img_size} is not a multiple of patch_size={self.patch_size}",
                f"Use img_size={self.grid * self.patch_size or self.patch_size}.",
            )
        n = self.param_count()
        if n > MAX_PARAMS:
            raise SpecError(
                f"depth={self.depth}, width={self.width} would have {n:.3g} parameters",
                f"Ask for fewer than {MAX_PARAMS:.0e} parameters.",
            )

    def timm_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``timm.models.VisionTransformer`` (and for a timm config.json's model_args)."""
        return dict(
            img_size=self.img_size,
            patch_size=self.patch_size,
            in_chans=self.in_chans,
            num_classes=self.num_classes,
            global_pool=self.global_pool,
            embed_dim=self.width,
            depth=self.depth,
            num_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio,
            class_token=self.class_token,
        )

    def param_count(self) -> int:
        return vit_param_count(
            self.depth,
            self.width,
            self.mlp_ratio,
            self.patch_size,
            self.in_chans,
            self.grid**2,
            self.num_classes,
            self.class_token,
        )
