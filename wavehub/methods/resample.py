"""Index rules shared by every method: uniform element selection (Weight Selection's rule) and linear
interpolation over depth. One rule per axis keeps channels *consistent* across all tensors that share it."""

from __future__ import annotations

import torch

__all__ = ["uniform_indices", "section_indices", "interp_depth", "depth_positions"]


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


def depth_positions(l_src: int, l_dst: int) -> torch.Tensor:
    """Position of each target layer on the source depth axis: ``p = l·(L_src−1)/(L_dst−1)``."""
    if l_dst == 1 or l_src == 1:
        return torch.zeros(l_dst, dtype=torch.float64)
    return torch.arange(l_dst, dtype=torch.float64) * (l_src - 1) / (l_dst - 1)


def interp_depth(x: torch.Tensor, l_dst: int) -> torch.Tensor:
    """Linear interpolation of a per-layer stack ``(L_src, ...)`` to ``(l_dst, ...)``."""
    l_src = x.shape[0]
    if l_src == l_dst:
        return x
    pos = depth_positions(l_src, l_dst)
    lo = pos.floor().long().clamp(max=l_src - 1)
    hi = (lo + 1).clamp(max=l_src - 1)
    frac = (pos - lo.double()).to(x.dtype).to(x.device)
    frac = frac.reshape(-1, *([1] * (x.dim() - 1)))
    lo, hi = lo.to(x.device), hi.to(x.device)
    return x.index_select(0, lo) * (1 - frac) + x.index_select(0, hi) * frac
