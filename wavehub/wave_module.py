"""A trainable WAVE-parametrized ViT: a stock timm ViT whose templated weights are ``Σ_t S_t ⊗ T_t``.

Used by stage 2 (fit: templates frozen, scalers trained) and stage 1 (build: both trained). Each forward
composes every weight type of *all* layers with one 2-D GEMM per type (not per block, not per layer), in the
autocast dtype, and runs the timm ViT through ``torch.func.functional_call`` with those tensors substituted.
``to_timm()`` returns a plain ``VisionTransformer`` with the weights composed once, so no wavehub module
outlives training.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import LearngeneConfig
from .methods.embed import patch_weight
from .methods.wave import TYPES
from .spec import ViTSpec

__all__ = ["WaveModel"]


class WaveModel(nn.Module):
    """``templates`` / ``scalers`` are ParameterDicts keyed ``<type>`` and ``<type>_bias``.

    ``vit`` is the stock timm model holding every non-templated tensor (norms, pos_embed, cls_token, head);
    its templated weights are frozen placeholders that ``forward`` replaces.
    """

    def __init__(
        self,
        vit: nn.Module,
        templates: dict[str, torch.Tensor],
        scalers: dict[str, torch.Tensor],
        cfg: LearngeneConfig,
        spec: ViTSpec,
        *,
        train_templates: bool = False,
    ):
        super().__init__()
        self.vit = vit
        self.cfg, self.spec = cfg, spec
        self.templates = nn.ParameterDict(
            {
                k.replace(".", "_"): nn.Parameter(v.detach().clone(), requires_grad=train_templates)
                for k, v in templates.items()
            }
        )
        self.scalers = nn.ParameterDict(
            {k.replace(".", "_"): nn.Parameter(v.detach().clone()) for k, v in scalers.items()}
        )
        self._templated = set()
        for _name, wt in TYPES.items():
            L = spec.depth if wt.per_layer else 1
            for layer in range(L):
                k = wt.key.format(l=layer)
                self._templated.update({f"{k}.weight", f"{k}.bias"})
        for n, p in self.vit.named_parameters():
            if n in self._templated:
                p.requires_grad_(False)

    def _template(self, key: str, dtype: torch.dtype) -> torch.Tensor:
        """Template ``key`` in ``dtype``. Frozen templates are cast once and cached (re-cast if replaced,
        modified in place or moved); trainable ones are cast every call so gradients reach them."""
        t = self.templates[key]
        if t.requires_grad:
            return t.to(dtype)
        cache = self.__dict__.setdefault("_tcache", {})
        hit = cache.get((key, dtype))
        if hit is None or hit[0] is not t or hit[1] != (t._version, t.data_ptr(), t.device):
            hit = (t, (t._version, t.data_ptr(), t.device), t.detach().to(dtype))
            cache[(key, dtype)] = hit
        return hit[2]

    def composed(self) -> dict[str, torch.Tensor]:
        """Every templated weight and bias, differentiable w.r.t. scalers (and templates if trainable).

        Each type is one 2-D GEMM ``(L·p·q, N) @ (N, w1·w2)`` on a contiguous copy of the (small) scalers, in
        the autocast dtype; its backward is one GEMM against the transposed templates, which BLAS reads in
        place. (Multiplying a transposed *view* of the scalers instead makes torch run a batched matmul whose
        backward materializes a transposed copy of the templates per layer, most of a step's time.) Per-layer
        tensors are ``unbind`` views: their backward is one stack, where ``W[layer]`` would write L zero-filled
        full-size gradients and sum them. Equal to ``kron.compose`` (tested)."""
        dev = self.templates["qkv"].device.type
        dt = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else self.templates["qkv"].dtype
        out: dict[str, torch.Tensor] = {}
        for name, wt in TYPES.items():
            S, Sb = self.scalers[name], self.scalers[f"{name}_bias"]
            L, n, p, q = S.shape
            T, Tb = self._template(name, dt), self._template(f"{name}_bias", dt)
            w1, w2 = T.shape[1:]
            s2 = S.to(dt).permute(0, 2, 3, 1).reshape(L * p * q, n)
            W = torch.mm(s2, T.reshape(n, w1 * w2)).view(L, p, q, w1, w2).permute(0, 1, 3, 2, 4)
            W = W.reshape(L, p * w1, q * w2)
            b = torch.mm(Sb.to(dt).transpose(1, 2).reshape(L * Sb.shape[2], Sb.shape[1]), Tb).reshape(L, -1)
            if not wt.per_layer:
                out[f"{wt.key}.weight"] = patch_weight(W[0], self.cfg.aux, self.spec)
                out[f"{wt.key}.bias"] = b[0]
                continue
            for layer, (Wl, bl) in enumerate(zip(W.unbind(0), b.unbind(0), strict=True)):
                k = wt.key.format(l=layer)
                out[f"{k}.weight"] = Wl
                out[f"{k}.bias"] = bl
        return out

    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        return torch.func.functional_call(self.vit, self.composed(), (x,), kwargs, strict=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Token features after the final norm (for feature distillation)."""
        return _call_method(self.vit, "forward_features", self.composed(), x)

    @classmethod
    def from_learngene(
        cls,
        lg,
        spec: ViTSpec,
        *,
        init: str = "resample",
        train_templates: bool = False,
        seed: int = 0,
        device=None,
        dtype=None,
        depth_rule: str | None = None,
        bank: bool | str = True,
        **timm_kwargs,
    ) -> WaveModel:
        """Start from a WAVE learngene: scalers initialized for ``spec`` (the bank entry for that size when
        the learngene has one and ``bank``, else resampled aux scalers, over depth by ``depth_rule``)."""
        from .materialize import build_model, wave_source
        from .methods.wave import target_scalers

        g = torch.Generator().manual_seed(seed)
        src, cfg, _ = wave_source(lg, spec, bank, init)
        scalers = target_scalers(
            src, cfg, spec, init=init, generator=g, device=device, dtype=dtype, depth_rule=depth_rule
        )
        vit = build_model(
            lg,
            spec,
            device=device,
            dtype=dtype,
            scalers=scalers,
            seed=seed,
            depth_rule=depth_rule,
            bank=bank,
            **timm_kwargs,
        )
        vit._wavehub_timm_kwargs = dict(timm_kwargs)
        templates = {
            k[len("templates.") :]: v.to(device=device, dtype=dtype or torch.float32)
            for k, v in lg.tensors.items()
            if k.startswith("templates.")
        }
        return cls(vit, templates, scalers, lg.cfg, spec, train_templates=train_templates)

    def scaler_parameters(self) -> list[nn.Parameter]:
        return list(self.scalers.values())

    def extra_parameters(self) -> dict[str, nn.Parameter]:
        """The ViT's own trainable tensors (norms, pos_embed, cls_token, head), by timm name."""
        return {n: p for n, p in self.vit.named_parameters() if n not in self._templated}

    @torch.no_grad()
    def to_timm(self):
        """A stock ``VisionTransformer`` with everything composed once (meta build + assign)."""
        from timm.models.vision_transformer import VisionTransformer

        sd = {k: v.detach().clone() for k, v in self.vit.state_dict().items() if k not in self._templated}
        sd.update({k: v.detach().clone().contiguous() for k, v in self.composed().items()})
        with torch.device("meta"):
            model = VisionTransformer(**{"weight_init": "skip", **self._vit_kwargs()})
        model.load_state_dict(sd, strict=True, assign=True)
        for attr in ("pretrained_cfg", "default_cfg", "wavehub_info"):
            if hasattr(self.vit, attr):
                setattr(model, attr, getattr(self.vit, attr))
        return model

    def _vit_kwargs(self) -> dict:
        kw = self.spec.timm_kwargs()
        kw.update(getattr(self.vit, "_wavehub_timm_kwargs", {}))
        return kw


def _call_method(module: nn.Module, method: str, params: dict[str, torch.Tensor], *args):
    """functional_call on a bound method other than forward (parameters swapped for the call)."""
    from torch.nn.utils.stateless import _reparametrize_module

    with _reparametrize_module(module, params, strict=False):
        return getattr(module, method)(*args)
