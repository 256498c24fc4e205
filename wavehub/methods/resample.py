"""Index rules shared by every method: uniform element selection (Weight Selection's rule) and linear
interpolation over depth (by a selectable rule). One rule per axis keeps channels *consistent* across all
tensors that share it."""

from __future__ import annotations

import torch

from ..errors import SpecError

__all__ = [
    "uniform_indices",
    "section_indices",
    "interp_depth",
    "interp_at",
    "depth_positions",
    "check_depth_rule",
    "resolve_depth_rule",
    "DEPTH_RULES",
    "DEFAULT_DEPTH_RULE",
    "PREFIX_TRIM",
]

#: How a target's layers are placed on the source's depth axis (see :func:`depth_positions`).
DEPTH_RULES = ("stretch", "prefix")
#: Depth rule used when a caller passes none ("prefix" fits no better; benchmarks/README.md §7).
DEFAULT_DEPTH_RULE = "stretch"
#: Source layers a deeper-than-source target leaves out under ``"prefix"`` (benchmarks/README.md §7).
PREFIX_TRIM = 4


def uniform_indices(n_src: int, n_dst: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Weight Selection's uniform rule; also used to *repeat* (nearest neighbour) when ``n_dst > n_src``.

    ``n_src % n_dst == 0`` -> every (n_src/n_dst)-th index from 0; else ``round(linspace(0, n_src-1, n_dst))``.
    """
    if n_dst <= n_src and n_src % n_dst == 0:
        return torch.arange(n_dst, device=device) * (n_src // n_dst)
    return torch.linspace(0, n_src - 1, n_dst, device=device, dtype=torch.float64).round().long()


def section_indices(n_src: int, n_dst: int, sections: int, device=None) -> torch.Tensor:
    """Uniform selection applied per section (q/k/v thirds), so section and head boundaries survive."""
    if sections == 1:
        return uniform_indices(n_src, n_dst, device)
    a, b = n_src // sections, n_dst // sections
    base = uniform_indices(a, b, device)
    return torch.cat([base + s * a for s in range(sections)])


def depth_positions(l_src: int, l_dst: int, rule: str = "stretch") -> torch.Tensor:
    """Position of each target layer on the source depth axis (fractional positions are interpolated).

    ``"stretch"``: ``p = l·(L_src−1)/(L_dst−1)``, the whole source depth spread over the target, so every
    target ends with the source's last layer. ``"prefix"``: layer l takes source layer l when
    ``L_dst <= L_src`` (Weight Selection's rule: a shallow target is the source's first layers); a deeper
    target stretches the source's first ``L_src − PREFIX_TRIM`` layers over its depth, so it too leaves out
    the source's last layers. ``L_dst == L_src`` is the identity under every rule. Measured on DINOv2-S
    (benchmarks/README §7): "prefix" probes slightly better but fine-tunes and fits no better (much worse at
    16 layers), hence "stretch" is the default.
    """
    check_depth_rule(rule)
    if l_dst == l_src:
        return torch.arange(l_dst, dtype=torch.float64)
    if rule == "prefix":
        if l_dst <= l_src:
            return torch.arange(l_dst, dtype=torch.float64)
        l_src = max(min(l_src, 2), l_src - PREFIX_TRIM)
    if l_dst == 1 or l_src == 1:
        return torch.zeros(l_dst, dtype=torch.float64)
    return torch.arange(l_dst, dtype=torch.float64) * (l_src - 1) / (l_dst - 1)


def resolve_depth_rule(depth_rule: str | None) -> str:
    """``None`` -> the default; an unknown name -> SpecError (before any tensor is touched)."""
    rule = DEFAULT_DEPTH_RULE if depth_rule is None else depth_rule
    check_depth_rule(rule)
    return rule


def check_depth_rule(rule: str) -> None:
    """Refuse an unknown rule name with a SpecError naming the valid ones."""
    if rule not in DEPTH_RULES:
        raise SpecError(f"unknown depth_rule {rule!r}", f"Use one of {', '.join(map(repr, DEPTH_RULES))}.")


def interp_at(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of a per-layer stack ``(L_src, ...)`` at fractional layer positions ``pos``."""
    l_src = x.shape[0]
    lo = pos.floor().long().clamp(max=l_src - 1)
    hi = (lo + 1).clamp(max=l_src - 1)
    frac = (pos - lo.double()).to(x.dtype).to(x.device)
    frac = frac.reshape(-1, *([1] * (x.dim() - 1)))
    lo, hi = lo.to(x.device), hi.to(x.device)
    return x.index_select(0, lo) * (1 - frac) + x.index_select(0, hi) * frac


def interp_depth(x: torch.Tensor, l_dst: int, rule: str = "stretch") -> torch.Tensor:
    """A per-layer stack ``(L_src, ...)`` resampled to ``(l_dst, ...)`` by ``rule`` (see depth_positions)."""
    check_depth_rule(rule)
    if x.shape[0] == l_dst:
        return x
    return interp_at(x, depth_positions(x.shape[0], l_dst, rule))
