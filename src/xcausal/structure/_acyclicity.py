"""Smooth acyclicity functions h(W) >= 0 with h(W) = 0 exactly when W is the adjacency of a DAG.

Two characterisations are provided, both pure torch and differentiable in ``W``:

* :func:`h_expm` -- NOTEARS (Zheng et al. 2018): ``h(W) = tr(exp(W∘W)) - d``.
* :func:`h_logdet` -- DAGMA (Bello et al. 2022): ``h(W) = -log det(sI - W∘W) + d log s``, defined on
  the M-matrix domain ``ρ(W∘W) < s``.

Numerical policy (shared by both functions)
-------------------------------------------
* The value is computed in float64 whatever the input dtype (float32 on devices without float64,
  i.e. MPS) and returned in the input dtype. ``tr(exp(A)) - d`` cancels catastrophically: in float32
  it cannot resolve ``h`` below about ``d * 1e-7``, far above the usual ``h_tol = 1e-8``.
* Both functions return a finite value with a finite, useful gradient for any finite ``W``, by a
  documented continuation outside the region where the exact formula is representable / defined
  (see each function). A non-finite ``W`` raises ``ValueError``; a non-finite result (possible only
  for absurd inputs: float64 overflow of ``W∘W`` at ``|W| ~ 1e154``, or a value beyond the input
  dtype's range, e.g. ``|W| ~ 1e16`` in float32) raises ``FloatingPointError``.
* Large weights. Outside the cheap regime (``h_expm``: ``||W∘W||_inf > 600``; ``h_logdet``: the
  row/column-sum bound on ``ρ(W∘W)`` not below ``boundary * s``) both functions work on the strongly
  connected components of the pattern of ``W∘W``: for a matrix in block-triangular form ``exp`` and
  ``det(I - ·)`` are block-triangular too, so ``tr exp(A) = Σ_k tr exp(A_kk)``,
  ``det(sI - A) = Π_k det(sI - A_kk)`` and ``ρ(A) = max_k ρ(A_kk)``, exactly, value and gradient
  (the gradient on an entry between components is exactly zero in both formulas). Nodes on no
  cycle contribute ``exp(A_ii)`` / ``1 - A_ii`` in closed form, so a DAG gives ``h = 0`` exactly
  however large its weights (the dense formulas lose all precision there: an LU factorisation of a
  permuted ``d = 40`` DAG with weights ~10 returned ``h_logdet = -12``, and scaling and squaring of
  a DAG with weights 1e3 underflowed to ``h_expm = -d`` with a NaN gradient). A component whose
  largest entry exceeds ``1e4`` is first balanced by a diagonal similarity ``D A_kk D⁻¹`` (Osborne's
  iteration; ``D`` is a constant, and trace of exp, determinant and spectrum are invariant), which
  keeps its exponential and factorisation within range.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

__all__ = ["h_expm", "h_logdet"]

logger = logging.getLogger(__name__)

# ||W∘W||_inf below which exp(W∘W) cannot overflow the working dtype (row sums of exp(A) are bounded
# by exp(||A||_inf) for A >= 0); above it tr(exp(A)) is computed in log space.
_EXPM_DIRECT_LIMIT = {torch.float64: 600.0, torch.float32: 60.0}


def _work_dtype(w: torch.Tensor) -> torch.dtype:
    if w.dtype == torch.float64:
        return torch.float64
    if w.device.type == "mps":  # no float64 on Apple GPUs
        return torch.float32
    return torch.float64


def _check_square(w: torch.Tensor, name: str) -> int:
    if not isinstance(w, torch.Tensor):
        raise ValueError(f"{name}: W must be a torch.Tensor, got {type(w).__name__}")
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"{name}: W must be a square (d, d) matrix, got shape {tuple(w.shape)}")
    if not w.is_floating_point():
        raise ValueError(f"{name}: W must be a floating-point tensor, got dtype {w.dtype}")
    if not bool(torch.isfinite(w.detach()).all()):
        raise ValueError(f"{name}: W contains NaN or inf")
    return int(w.shape[0])


def _finite_or_raise(h: torch.Tensor, name: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``h`` cast to ``dtype`` (default: kept), FloatingPointError if it is, or becomes, non-finite."""
    if not bool(torch.isfinite(h.detach())):
        raise FloatingPointError(f"{name}: result is {float(h.detach())}; W is too large to evaluate (|W| ~ "
                                 "1e150 overflows W∘W in float64)")
    if dtype is not None and dtype != h.dtype:
        out = h.to(dtype)
        if not bool(torch.isfinite(out.detach())):
            raise FloatingPointError(f"{name}: result {float(h.detach()):.3g} overflows {dtype}; W is too large "
                                     f"for {dtype} (pass it in float64)")
        return out
    return h


# largest entry of a strongly connected block of W∘W above which the block is balanced first
_BALANCE_ABOVE = 1e4


def _components(ad: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(indices of the nodes on no cycle through another node, index tensors of the strongly
    connected components with two or more nodes) of the pattern ``ad > 0``."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    pattern = (ad > 0).cpu().numpy()
    np.fill_diagonal(pattern, False)
    n, labels = connected_components(csr_matrix(pattern), directed=True, connection="strong")
    sizes = np.bincount(labels, minlength=n)
    trivial = np.flatnonzero(sizes[labels] == 1)
    blocks = [np.flatnonzero(labels == k) for k in range(n) if sizes[k] > 1]
    as_t = lambda ix: torch.as_tensor(ix, dtype=torch.long, device=ad.device)  # noqa: E731
    return as_t(trivial), [as_t(b) for b in blocks]


def _balance(b: torch.Tensor) -> torch.Tensor:
    """``D b D⁻¹`` for an irreducible non-negative block, ``D`` positive diagonal and constant (Osborne's
    iteration on the off-diagonal row and column sums), so off-diagonal magnitudes become comparable."""
    x = b.detach().cpu().to(torch.float64).numpy().copy()
    np.fill_diagonal(x, 0.0)
    logs = np.zeros(len(x))
    for _ in range(100):
        moved = 0.0
        for i in range(len(x)):
            r, c = x[i].sum(), x[:, i].sum()
            if r <= 0.0 or c <= 0.0:
                continue
            g = 0.5 * (math.log(c) - math.log(r))
            f = math.exp(g)
            x[i] *= f
            x[:, i] /= f
            logs[i] += g
            moved = max(moved, abs(g))
        if moved < 1e-3:
            break
    s = torch.as_tensor(logs, dtype=b.dtype, device=b.device)
    return b * torch.exp((s[:, None] - s[None, :]).clamp(-700.0, 700.0))


def _block(a: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    b = a if len(idx) == len(a) else a[idx][:, idx]  # (one component: idx is every node, in order)
    return _balance(b) if float(b.detach().max()) > _BALANCE_ABOVE else b


def _log_trace_expm(a: torch.Tensor) -> torch.Tensor:
    """``log tr(exp(A))`` for a non-negative matrix whose exponential overflows.

    Scaling and squaring in log space: ``exp(A) = exp(A / 2**k) ** (2**k)``, with ``A / 2**k`` small
    enough for :func:`torch.linalg.matrix_exp`, and each squaring renormalised by the largest entry
    (a detached constant, so the gradient is exact: the result does not depend on it).
    """
    limit = _EXPM_DIRECT_LIMIT.get(a.dtype, 60.0) / 4.0
    norm = float(a.detach().sum(dim=1).max())
    k = max(0, math.ceil(math.log2(norm / limit)))
    e = torch.linalg.matrix_exp(a / (2.0 ** k))
    log_scale = a.new_zeros(())
    for _ in range(k):
        m = e.detach().abs().max().clamp_min(torch.finfo(a.dtype).tiny)
        e = e / m
        log_scale = 2.0 * (log_scale + torch.log(m))
        e = e @ e
    return log_scale + torch.log(torch.diagonal(e).sum())


def h_expm(W: torch.Tensor, *, cap: float = 1e6) -> torch.Tensor:
    r"""NOTEARS acyclicity ``h(W) = tr(exp(W∘W)) - d``.

    Parameters
    ----------
    W : torch.Tensor, shape (d, d)
        Weighted adjacency (rows = source, columns = target); any sign, any float dtype/device.
    cap : float, default 1e6
        Largest value returned exactly. Above it (a strongly cyclic ``W``; for float64 the exact value
        overflows once ``ρ(W∘W) > ~709``) the function continues as
        ``cap + (cap + d) * (log(tr exp(W∘W)) - log(cap + d))``: continuous with a continuous
        gradient at the junction, increasing, finite for any finite ``W``. ``log tr exp(W∘W)`` itself
        is computed without overflow by scaling and squaring in log space, so e.g. a dense
        ``d = 40`` matrix of 10s (``ρ(W∘W) ≈ 4000``) gives a finite value and gradient.

    Returns
    -------
    torch.Tensor, shape ()
        ``h >= 0`` (up to rounding), in ``W``'s dtype and device; differentiable in ``W``. Inside the
        exact range the gradient is ``exp(W∘W)ᵀ ∘ 2W``.

    Raises
    ------
    ValueError
        If ``W`` is not a finite square floating-point matrix or ``cap <= 0``.
    """
    d = _check_square(W, "h_expm")
    if not (cap > 0 and math.isfinite(cap)):
        raise ValueError(f"h_expm: cap must be a positive finite number, got {cap}")
    a = (W.to(_work_dtype(W)) ** 2)
    limit = _EXPM_DIRECT_LIMIT.get(a.dtype, 60.0)
    norm = float(a.detach().sum(dim=1).max()) if d else 0.0
    if norm <= limit:
        tr = torch.diagonal(torch.linalg.matrix_exp(a)).sum()
        h = tr - d
        if float(h.detach()) <= cap:
            return _finite_or_raise(h, "h_expm", W.dtype)
        log_tr = torch.log(tr)
    else:
        h_blocks, log_tr = _expm_by_components(a, limit)
        if h_blocks is not None and float(h_blocks.detach()) <= cap:
            return _finite_or_raise(h_blocks, "h_expm", W.dtype)
    log_cap = math.log(cap + d)
    if float(log_tr.detach()) <= log_cap:
        h = torch.exp(log_tr) - d
    else:
        h = cap + (cap + d) * (log_tr - log_cap)
        logger.debug("h_expm: value above cap=%g (log tr exp = %.4g); using the log continuation",
                     cap, float(log_tr.detach()))
    return _finite_or_raise(h, "h_expm", W.dtype)


def _expm_by_components(a: torch.Tensor, limit: float) -> tuple[torch.Tensor | None, torch.Tensor]:
    """``(tr exp(A) - d or None, log tr exp(A))`` summed over the strongly connected components of a
    non-negative ``A``; the first is None when a component's exponential overflows (then only the
    log is available, computed in log space)."""
    trivial, blocks = _components(a.detach())
    diag = torch.diagonal(a)
    h_parts: list[torch.Tensor] = []
    logs: list[torch.Tensor] = []
    if len(trivial):
        x = diag[trivial]
        h_parts.append(torch.expm1(x).sum())  # exp(A_ii) - 1, exact near 0
        logs.append(torch.logsumexp(x, 0))
    exact = True
    for idx in blocks:
        b = _block(a, idx)
        if float(b.detach().sum(dim=1).max()) <= limit:
            tr = torch.diagonal(torch.linalg.matrix_exp(b)).sum()
            h_parts.append(tr - len(idx))
            logs.append(torch.log(tr))
        else:
            exact = False
            logs.append(_log_trace_expm(b))
    log_tr = torch.logsumexp(torch.stack(logs), 0)
    if not bool(torch.isfinite(log_tr.detach())) or float(log_tr.detach()) < math.log(len(diag)) - 1e-6:
        raise FloatingPointError(f"h_expm: log tr exp(W∘W) evaluated to {float(log_tr.detach())} "
                                 f"(it is >= log d = {math.log(len(diag)):.4g}); W is too large to evaluate")
    return (torch.stack(h_parts).sum() if exact else None), log_tr


def _perron_root(a: torch.Tensor) -> torch.Tensor:
    """Differentiable spectral radius of a non-negative matrix (called only when it is positive).

    The value comes from an eigendecomposition; the gradient from the classical first-order
    formula ``∂ρ/∂A = v uᵀ / (vᵀu)`` (u, v the right and left Perron vectors), implemented by
    returning ``vᵀ A u / vᵀ u`` with u, v detached. When the Perron root is not simple and
    ``vᵀu`` vanishes (ties between strongly connected components), the root is returned detached.
    """
    ad = a.detach()
    lam_r, vec_r = torch.linalg.eig(ad)
    lam_l, vec_l = torch.linalg.eig(ad.T)
    ir = int(torch.argmax(lam_r.real))
    il = int(torch.argmax(lam_l.real))
    r_val = float(lam_r.real[ir])
    u = vec_r[:, ir].real
    v = vec_l[:, il].real
    u = u * torch.sign(u.sum()) if float(u.sum()) != 0 else u
    v = v * torch.sign(v.sum()) if float(v.sum()) != 0 else v
    denom = v @ u
    if float(denom) <= 1e-10 * float(torch.linalg.vector_norm(u) * torch.linalg.vector_norm(v)):
        logger.debug("h_logdet: Perron root %.4g is not simple; its gradient is dropped", r_val)
        return a.new_tensor(r_val)
    return (v @ a @ u) / denom


def h_logdet(W: torch.Tensor, s: float = 1.0, *, boundary: float = 0.99) -> torch.Tensor:
    r"""DAGMA log-det acyclicity ``h(W) = -log det(sI - W∘W) + d log s``.

    Exact on ``ρ(W∘W) < boundary * s`` (inside the M-matrix domain ``ρ < s``, where ``h >= 0`` and
    ``h = 0`` iff ``W`` is a DAG). The exact formula is invalid from ``ρ = s`` on (``sI - W∘W`` leaves
    the M-matrices: ``log det`` may be undefined or even negative, which is how DAGMA detects it and
    restarts with a smaller step). Here, instead, for ``t = ρ(W∘W) / (boundary * s) >= 1`` the
    function continues radially:

    .. math::  h(W) = h_\mathrm{exact}(A / t) + D (t - 1), \quad
               D = \operatorname{tr}\big((sI - A/t)^{-1} A/t\big), \quad A = W∘W,

    i.e. the exact value at the rescaled matrix on the safe boundary (``ρ(A/t) = boundary * s``)
    plus a linear term whose slope ``D`` is the exact function's radial derivative there. The value
    and gradient are continuous across the boundary, the function keeps growing linearly in
    ``ρ(W∘W)``, and its gradient points towards the domain (it contains ``D ∇ρ``) -- a large, finite
    penalty for any finite ``W`` (e.g. ~4e5 for a dense ``d = 40`` matrix of 10s). ``ρ`` is
    differentiated by the Perron-vector formula (see the note in the code on non-simple roots).

    Parameters
    ----------
    W : torch.Tensor, shape (d, d)
        Weighted adjacency (rows = source, columns = target).
    s : float, default 1.0
        M-matrix scale; must be positive.
    boundary : float, default 0.99
        Fraction of ``s`` up to which the exact formula is used; in (0, 1).

    Returns
    -------
    torch.Tensor, shape ()
        In ``W``'s dtype and device; differentiable in ``W``. Inside the exact region the gradient is
        ``2W ∘ (sI - W∘W)^{-T}``.

    Raises
    ------
    ValueError
        If ``W`` is not a finite square floating-point matrix, ``s <= 0`` or ``boundary`` not in (0, 1).
    """
    d = _check_square(W, "h_logdet")
    if not (s > 0 and math.isfinite(s)):
        raise ValueError(f"h_logdet: s must be a positive finite number, got {s}")
    if not 0.0 < boundary < 1.0:
        raise ValueError(f"h_logdet: boundary must be in (0, 1), got {boundary}")
    a = (W.to(_work_dtype(W)) ** 2) / s  # scale once: h = -log det(I - A/s)
    if d == 0:
        return W.new_zeros(())
    eye = torch.eye(d, dtype=a.dtype, device=a.device)
    ad = a.detach()
    # cheap sufficient test first: ρ(A) <= min(max row sum, max column sum)
    bound = min(float(ad.sum(dim=1).max()), float(ad.sum(dim=0).max()))
    if bound < boundary:
        return _finite_or_raise(0.0 - torch.linalg.slogdet(eye - a)[1], "h_logdet", W.dtype)
    # per strongly connected component (module notes): ρ(A) = max over components, and
    # -log det(I - A) and the continuation's slope D are sums over them
    trivial, blocks = _components(ad)
    diag = torch.diagonal(a)[trivial]
    mats = [_block(a, idx) for idx in blocks]
    # spectral radius of a non-negative matrix = its largest real eigenvalue (Perron-Frobenius)
    rhos = [float(torch.linalg.eigvals(b.detach()).real.max()) for b in mats]
    rho_triv = float(diag.detach().max()) if len(trivial) else 0.0
    rho_val = max([rho_triv, *rhos])
    if rho_val < boundary:
        h = 0.0 - torch.log1p(-diag).sum()
        for b in mats:
            h = h - torch.linalg.slogdet(torch.eye(len(b), dtype=a.dtype, device=a.device) - b)[1]
        return _finite_or_raise(h, "h_logdet", W.dtype)
    if rhos and max(rhos) >= rho_triv:
        t = _perron_root(mats[int(np.argmax(rhos))]) / boundary
    else:
        t = diag.max() / boundary
    x = diag / t  # nodes on no cycle: 1×1 blocks, h = -log(1 - x), slope x / (1 - x)
    h = (-torch.log1p(-x) + x / (1.0 - x) * (t - 1.0)).sum()
    for b in mats:
        b_bar = b / t
        m = torch.eye(len(b), dtype=a.dtype, device=a.device) - b_bar
        h = h - torch.linalg.slogdet(m)[1] + torch.diagonal(torch.linalg.solve(m, b_bar)).sum() * (t - 1.0)
    logger.debug("h_logdet: ρ(W∘W)/s = %.4g outside the exact region (< %g); radial continuation",
                 rho_val, boundary)
    return _finite_or_raise(h, "h_logdet", W.dtype)
