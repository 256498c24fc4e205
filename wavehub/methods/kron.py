"""Kronecker composition ``W = Σ_t S_t ⊗ T_t`` and its inverse, the nearest-Kronecker-product SVD.

Order is ``S ⊗ T``: block (i, j) of W (size w1×w2) is ``Σ_t S_t[i, j] · T_t``, so a target matrix is a tiled
concatenation of weighted template sums ("concatenation and weighted aggregation").
"""

from __future__ import annotations

import torch

from . import memory

__all__ = [
    "compose",
    "compose_layers",
    "compose_vector",
    "blocks",
    "unblocks",
    "nkp_svd",
    "weighted_nkp",
    "output_error",
    "kron_reference",
]


def compose(scalers: torch.Tensor, templates: torch.Tensor) -> torch.Tensor:
    """``Σ_t S[..., t] ⊗ T[t]``.

    scalers: ``(..., N, p, q)``; templates: ``(N, w1, w2)`` -> ``(..., p·w1, q·w2)``.
    One einsum (a single GEMM plus one permuting copy), never a Python loop over blocks.
    """
    *lead, n, p, q = scalers.shape
    _, w1, w2 = templates.shape
    # (..., p, q, w1, w2) via a GEMM over t, then permute to (..., p, w1, q, w2).
    s = scalers.reshape(-1, n, p * q).transpose(-1, -2)  # (B, p*q, N)
    t = templates.reshape(n, w1 * w2)  # (N, w1*w2)
    out = torch.matmul(s, t).reshape(-1, p, q, w1, w2)  # (B, p, q, w1, w2)
    out = out.permute(0, 1, 3, 2, 4).reshape(*lead, p * w1, q * w2)
    return out


def compose_layers(
    scalers: torch.Tensor,
    templates: torch.Tensor,
    scratch: int = 1 << 18,
    out_dtype: torch.dtype | None = None,
) -> list[torch.Tensor]:
    """Like :func:`compose` for ``scalers (L, N, p, q)``, but one separately allocated matrix per layer.

    Materialization is memory-bound: a whole-layer GEMM followed by a permuting copy writes every weight twice.
    Here each GEMM fills a cache-sized scratch (``scratch`` floats), and the permuting copy from cache is each
    weight's only write to memory. Layers get independent storage (on huge
    pages, :mod:`wavehub.methods.memory`), so the result can be assigned as parameters and saved with safetensors.

    Widening repeats scaler blocks (the uniform width rule), and a repeated scaler row or column gives a
    repeated block row or column of W. Only distinct blocks go through the GEMM; the copy out of the scratch
    writes each of them to every place it repeats, so a ViT-B from a ViT-S learngene costs the GEMMs of a ViT-S
    plus the writes of a ViT-B, with no intermediate pass. The result is identical either way.

    ``out_dtype`` (default: the templates') is the dtype of the result; the GEMMs run in the templates' dtype
    and the permuting copy casts, so a low-precision result costs no extra pass.
    """
    L, n, p, q = scalers.shape
    _, w1, w2 = templates.shape
    t = templates.reshape(n, w1 * w2)
    od = out_dtype or t.dtype
    rsel, rinv = _repeats(scalers, 2)
    csel, cinv = _repeats(scalers, 3)
    su = scalers if rsel is None else scalers.index_select(2, rsel)
    su = su if csel is None else su.index_select(3, csel)
    su = su.permute(0, 2, 3, 1).contiguous()  # (L, p_u, q_u, N)
    rr, rc = _uniform_repeats(rinv, su.shape[1]), _uniform_repeats(cinv, su.shape[2])  # same in every layer
    if rr and rc:
        return [_compose_uniform(su[layer], t, w1, w2, scratch, od, rr, rc) for layer in range(L)]
    return [_compose_rows(su[layer], t, w1, w2, scratch, od, rinv, cinv) for layer in range(L)]


def _compose_uniform(
    s: torch.Tensor, t: torch.Tensor, w1: int, w2: int, scratch: int, out_dtype: torch.dtype, rr: int, rc: int
) -> torch.Tensor:
    """One layer: distinct blocks ``s (p_u, q_u, N)``, ``t (N, w1*w2)`` -> ``(p_u*rr*w1, q_u*rc*w2)``, where
    every distinct block row (column) repeats ``rr`` (``rc``) times in place: no repeats, or the uniform width
    rule.

    Each GEMM covers *all* blocks of the layer and a slice of template rows, and one broadcasting copy writes
    that slice to every repeat. That GEMM shape runs faster on a CPU than a few whole block rows
    (:func:`_compose_rows`); see benchmarks/README.md for the numbers."""
    pu, qu, n = s.shape
    w = memory.empty((pu * rr * w1, qu * rc * w2), dtype=out_dtype, device=t.device)
    dst = w.view(pu, rr, w1, qu, rc, w2)
    s2 = s.reshape(pu * qu, n)
    ca = max(1, min(w1, scratch // (pu * qu * w2)))  # template rows per GEMM
    for a0 in range(0, w1, ca):
        a1 = min(w1, a0 + ca)
        tmp = torch.mm(s2, t[:, a0 * w2 : a1 * w2]).view(pu, qu, a1 - a0, w2).permute(0, 2, 1, 3)
        dst[:, :, a0:a1].copy_(tmp[:, None, :, :, None].expand(pu, rr, a1 - a0, qu, rc, w2))
    return w


def _uniform_repeats(inv: torch.Tensor | None, distinct: int) -> int | None:
    """r when every distinct slice repeats r times in place (``inv = [0]*r + [1]*r + ...``; 1 for None)."""
    if inv is None:
        return 1
    r, rem = divmod(inv.numel(), distinct)
    if rem or not torch.equal(inv, torch.arange(distinct, device=inv.device).repeat_interleave(r)):
        return None
    return r


def _compose_rows(
    s: torch.Tensor,
    t: torch.Tensor,
    w1: int,
    w2: int,
    scratch: int,
    out_dtype: torch.dtype | None = None,
    rinv: torch.Tensor | None = None,
    cinv: torch.Tensor | None = None,
) -> torch.Tensor:
    """One layer for any repeats (``rinv``/``cinv``: for every block row/column of the result, the distinct one
    it repeats; None: all distinct): a few whole block rows per GEMM, repeated columns expanded in cache,
    repeated rows written one destination row at a time (or gathered, when out of order)."""
    pu, qu, n = s.shape
    p = pu if rinv is None else rinv.numel()
    q = qu if cinv is None else cinv.numel()
    if rinv is not None and not bool((rinv[1:] >= rinv[:-1]).all()):
        # repeats out of order (no rule makes these today): compose the distinct rows, then gather them
        wu = _compose_rows(s, t, w1, w2, scratch, out_dtype, None, cinv).view(pu, w1, q, w2)
        w = memory.empty((p * w1, q * w2), dtype=wu.dtype, device=wu.device)
        torch.index_select(wu, 0, rinv, out=w.view(p, w1, q, w2))
        return w
    # first destination row of every distinct row (rinv is sorted): destinations of rows i..j-1 are contiguous
    bound = (
        None if rinv is None else torch.searchsorted(rinv, torch.arange(pu + 1, device=rinv.device)).tolist()
    )
    rows = max(1, scratch // (qu * w1 * w2))  # distinct block rows per GEMM
    w = memory.empty((p * w1, q * w2), dtype=out_dtype or t.dtype, device=t.device)
    wv = w.view(p, w1, q, w2)
    for i in range(0, pu, rows):
        j = min(pu, i + rows)
        tmp = torch.mm(s[i:j].reshape(-1, n), t).view(j - i, qu, w1, w2).permute(0, 2, 1, 3)
        if cinv is not None:
            tmp = tmp.index_select(2, cinv)  # repeated columns, expanded in cache
        d0, d1 = (i, j) if rinv is None else (bound[i], bound[j])
        if d1 - d0 == j - i:  # no repeated rows here: one write (and cast)
            wv[d0:d1].copy_(tmp)
        else:  # one write per destination row
            torch.index_select(tmp.to(w.dtype), 0, rinv[d0:d1] - i, out=wv[d0:d1])
    return w


def _repeats(scalers: torch.Tensor, axis: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Indices of the distinct slices of ``scalers`` along ``axis`` (same in every layer) and, for every
    position, which distinct slice it repeats; ``(None, None)`` when all are distinct.

    Candidates are grouped by a cheap fingerprint (a dot product with a fixed vector) and confirmed with an
    exact comparison, so a false match is impossible and the cost is one pass over the scalers."""
    size = scalers.shape[axis]
    if size < 2:
        return None, None
    x = scalers.movedim(axis, 0).reshape(size, -1)
    probe = torch.linspace(1.0, 2.0, x.shape[1], dtype=x.dtype, device=x.device)
    fp = (x * probe).sum(1).tolist()
    first: list[int] = []
    inv: list[int] = []
    seen: dict[float, list[int]] = {}
    for i, f in enumerate(fp):
        for u in seen.get(f, ()):
            if torch.equal(x[i], x[first[u]]):
                inv.append(u)
                break
        else:
            seen.setdefault(f, []).append(len(first))
            inv.append(len(first))
            first.append(i)
    if len(first) == size:
        return None, None
    return (torch.tensor(first, device=scalers.device), torch.tensor(inv, device=scalers.device))


def compose_vector(scalers: torch.Tensor, templates: torch.Tensor) -> torch.Tensor:
    """1-D rule for biases: ``Σ_t s_t ⊗ b_t``. scalers ``(..., N, p)``, templates ``(N, w)`` -> ``(..., p·w)``."""
    *lead, n, p = scalers.shape
    out = torch.matmul(scalers.reshape(-1, n, p).transpose(-1, -2), templates)  # (B, p, w)
    return out.reshape(*lead, p * templates.shape[-1])


def blocks(w: torch.Tensor, w1: int, w2: int) -> torch.Tensor:
    """Cut ``(m1, m2)`` (or ``(..., m1, m2)``) into ``(..., m1/w1, m2/w2, w1*w2)`` rows of block entries."""
    *lead, m1, m2 = w.shape
    p, q = m1 // w1, m2 // w2
    return w.reshape(*lead, p, w1, q, w2).transpose(-3, -2).reshape(*lead, p, q, w1 * w2)


def unblocks(b: torch.Tensor, w1: int, w2: int) -> torch.Tensor:
    """Inverse of :func:`blocks`."""
    *lead, p, q, _ = b.shape
    return b.reshape(*lead, p, q, w1, w2).transpose(-3, -2).reshape(*lead, p * w1, q * w2)


def nkp_svd(mats: torch.Tensor, w1: int, w2: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest Kronecker product (Van Loan–Pitsianis) shared across a stack of matrices.

    ``mats``: ``(L, m1, m2)`` — the same weight type of every layer. All their w1×w2 blocks are stacked as rows
    of one matrix and decomposed by SVD; the top-``n`` right singular vectors are the templates (unit
    Frobenius norm) and the projections are the scalers, which is the least-squares optimum for a shared
    template basis. Computed in float64 with a fixed sign convention so a rebuild is reproducible.
    Returns ``scalers (L, n, m1/w1, m2/w2)`` and ``templates (n, w1, w2)``.
    """
    L, m1, m2 = mats.shape
    p, q = m1 // w1, m2 // w2
    rows = blocks(mats.double(), w1, w2).reshape(L * p * q, w1 * w2)
    n_eff = min(n, rows.shape[0], rows.shape[1])
    _, _, vh = torch.linalg.svd(rows, full_matrices=False)
    v = vh[:n_eff].contiguous()  # (n_eff, w1*w2)
    # Sign convention: the entry of largest magnitude of each template is positive.
    idx = v.abs().argmax(dim=1)
    sign = torch.sign(v.gather(1, idx[:, None])).squeeze(1)
    sign[sign == 0] = 1
    v = v * sign[:, None]
    coef = rows @ v.T  # (L*p*q, n_eff)
    if n_eff < n:  # pad with zero templates so shapes match the requested count
        v = torch.cat([v, v.new_zeros(n - n_eff, w1 * w2)])
        coef = torch.cat([coef, coef.new_zeros(coef.shape[0], n - n_eff)], dim=1)
    scalers = coef.reshape(L, p, q, n).permute(0, 3, 1, 2).contiguous()
    return scalers.to(mats.dtype), v.reshape(n, w1, w2).to(mats.dtype)


def weighted_nkp(
    mats: torch.Tensor,
    cov: torch.Tensor,
    scalers: torch.Tensor,
    templates: torch.Tensor,
    *,
    iters: int = 8,
    ridge: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Refine a shared template basis for the *output* error on real inputs, not the weight error.

    Minimizes ``Σ_l tr((W_l − Ŵ_l) C_l (W_l − Ŵ_l)ᵀ)`` with ``Ŵ_l = Σ_t S_{l,t} ⊗ T_t`` and ``C_l`` the second
    moment of layer l's inputs, i.e. the mean squared error of ``W_l x`` over the inputs ``C_l`` was measured
    on. The objective is quadratic in the scalers for fixed templates and in the templates for fixed scalers,
    so alternating least squares solves both halves exactly (scalers: one small system per layer shared by
    its block rows; templates: one ``N·w2`` system shared by every template row) and never increases it.
    ``ridge`` (relative to the mean diagonal) keeps the systems solvable where ``C`` is rank-deficient.
    Started from :func:`nkp_svd`'s answer (``scalers (L, N, p, q)``, ``templates (N, w1, w2)``); returns the
    same shapes, templates at unit Frobenius norm with the :func:`nkp_svd` sign convention. float64 throughout.
    """
    W, C = mats.double(), cov.double()
    S, T = scalers.double().clone(), templates.double().clone()
    L, n, p, q = S.shape
    _, w1, w2 = T.shape
    cb = C.reshape(L, q, w2, q, w2).transpose(2, 3)  # (L, j, k, w2, w2): block C_jk
    z = torch.bmm(W, C).reshape(L, p, w1, q, w2).transpose(2, 3)  # (L, i, j, w1, w2): block (W C)_ij
    eye_s, eye_t = torch.eye(n * q, dtype=W.dtype), torch.eye(n * w2, dtype=W.dtype)
    for _ in range(iters):
        for layer in range(L):  # G[(t,j),(u,k)] = tr(T_t C_jk T_uᵀ), rhs[i,(t,j)] = <(W C)_ij, T_t>
            g = torch.einsum("tjkac,uac->tjuk", torch.einsum("tab,jkbc->tjkac", T, cb[layer]), T)
            g = g.reshape(n * q, n * q)
            rhs = torch.einsum("ijrb,trb->itj", z[layer], T).reshape(p, n * q)
            g = g + ridge * g.diagonal().mean() * eye_s
            S[layer] = torch.linalg.solve(g, rhs.T).T.reshape(p, n, q).transpose(0, 1)
        h = torch.zeros(n * w2, n * w2, dtype=W.dtype)  # H[(t,b),(u,c)] = Σ s_t[i,j] s_u[i,k] C_jk[b,c]
        for layer in range(L):
            m = torch.einsum("tij,uik->tjuk", S[layer], S[layer])
            h += torch.einsum("tjuk,jkbc->tbuc", m, cb[layer]).reshape(n * w2, n * w2)
        rhs = torch.einsum("ltij,lijrb->rtb", S, z).reshape(w1, n * w2)
        h = h + ridge * h.diagonal().mean() * eye_t
        T = torch.linalg.solve(h, rhs.T).T.reshape(w1, n, w2).transpose(0, 1)
    norm = T.flatten(1).norm(dim=1)
    keep = norm > 0
    scale = torch.where(keep, norm, torch.ones_like(norm))
    flat = T.flatten(1) / scale[:, None]
    idx = flat.abs().argmax(dim=1)
    sign = torch.sign(flat.gather(1, idx[:, None])).squeeze(1)
    sign[sign == 0] = 1
    T = (flat * sign[:, None]).reshape(n, w1, w2)
    S = S * (scale * sign)[None, :, None, None]
    return S.to(mats.dtype).contiguous(), T.to(mats.dtype).contiguous()


def output_error(mats: torch.Tensor, approx: torch.Tensor, cov: torch.Tensor) -> float:
    """Relative output error ``sqrt(Σ tr(E C Eᵀ) / Σ tr(W C Wᵀ))`` of ``approx`` for inputs of second moment
    ``cov`` (``(L, m1, m2)``, ``(L, m1, m2)``, ``(L, m2, m2)``): what :func:`weighted_nkp` minimizes."""
    e, w, c = (approx - mats).double(), mats.double(), cov.double()
    return float((torch.einsum("lab,lbc,lac->", e, c, e) / torch.einsum("lab,lbc,lac->", w, c, w)).sqrt())


def kron_reference(scalers: torch.Tensor, templates: torch.Tensor) -> torch.Tensor:
    """Naive block-by-block reference (tests only): ``Σ_t torch.kron(S_t, T_t)``."""
    return sum(torch.kron(scalers[t], templates[t]) for t in range(templates.shape[0]))
