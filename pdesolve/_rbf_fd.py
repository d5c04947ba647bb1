"""RBF-FD differentiation matrices: polyharmonic splines plus polynomials on k-NN stencils.

Radial-basis-function-generated finite differences (RBF-FD) approximate a linear differential
operator `L` applied to a function sampled at scattered `nodes` by a sparse matrix: row i
holds the weights `c_k` of `L f(x_i) ~ sum_k c_k f(x_k)` over the `n` nodes nearest to
the evaluation point `x_i` (its *stencil*). The weights come from the local saddle-point
system of a polyharmonic spline (PHS) `phi(r) = r^m` augmented with all polynomials of total
degree <= `ell`:

    [ A   P ] [ c      ]   [ L phi(|x - x_j|) at x_i ]
    [ P^T 0 ] [ lambda ] = [ L p_k(x) at x_i         ]

so the weights differentiate every polynomial of degree <= `ell` exactly, and the error for
smooth functions is O(h^(ell + 1 - theta)) for an operator with `theta` derivatives. With the
design order `p` this module uses (as Sharma & Shankar 2022 and Shankar's reference code do)

* `ell = p + theta - 1` (polynomial degree; `polynomial_degree`),
* `n = 2 * C(ell + d, d) + 1` stencil nodes (`stencil_size`),
* `m = ell` if `ell` is odd, else `ell - 1`, and at least 5 (PHS degree).

Each stencil is shifted to its evaluation point and scaled by its radius (largest distance
from the evaluation point to a stencil node), so the local system is solved on a unit-size
stencil; the weights are then multiplied by `radius^(-theta)`. All stencils' systems are
solved at once with a batched `np.linalg.solve` (in chunks that bound memory).

This is NumPy/SciPy host code in float64; the resulting `scipy.sparse.csr_matrix` objects
are turned into JAX operators with `pdesolve._sparse.EllMatrix`.

Operator keys: `canonical_operator` turns every accepted spec into one canonical tuple
(`VALUE`, `LAPLACIAN`, `NORMAL`, `partial_key(i)`, `partial_key(i, j)`, `robin_key(alpha,
beta)`, `hyperlaplacian_key(k)`, defined here and nowhere else). The matrices of `assemble`
are keyed by them, and `pdesolve._recording_field` records an equation's derivatives as them.

**References:**

- V. Shankar, A. Sharma, *Accelerated training of physics-informed neural networks (PINNs)
  using meshless discretizations*, NeurIPS 2022 (section 2.2, "Ghost points").
- N. Flyer, B. Fornberg, V. Bayona, G. A. Barnett, *On the role of polynomials in RBF-FD
  approximations: I. Interpolation and accuracy*, J. Comput. Phys. 321 (2016).
- V. Bayona, N. Flyer, B. Fornberg, G. A. Barnett, *On the role of polynomials in RBF-FD
  approximations: II. Numerical solution of elliptic PDEs*, J. Comput. Phys. 332 (2017).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import scipy.sparse
import scipy.spatial

from ._validation import check_int, is_int

__all__ = [
    "LAPLACIAN",
    "NORMAL",
    "VALUE",
    "assemble",
    "canonical_operator",
    "derivative_order",
    "ghost_nodes",
    "hyperlaplacian_key",
    "partial_key",
    "phs_degree",
    "polynomial_degree",
    "rbf_fd_matrix",
    "robin_key",
    "stencil_size",
]

_VALID_FORMS = (
    '"value" / ("value",) (interpolation), "laplacian" / ("laplacian",), '
    '"normal" / ("normal",) (outward normal derivative n.grad, needs `normals`), '
    '("partial", i) (d/dx_i), ("partial", i, j) (d^2/dx_i dx_j, mixed or not), '
    '("robin", alpha, beta) (alpha n.grad + beta, needs `normals`), '
    '("hyperlaplacian", k) (the k-th power of the Laplacian, k >= 1; hyperviscosity)'
)

# Bytes of local saddle-point systems solved in one batched np.linalg.solve call.
_CHUNK_BYTES = 32 * 2**20
# A local system whose relative residual exceeds this is reported as singular.
_RESIDUAL_TOL = 1e-8
# A stencil whose largest weight (times radius^theta) exceeds this multiple of the node set's
# median is ill-conditioned: rbf_fd_matrix raises rather than return wrong derivatives.
_WEIGHT_GROWTH = 1e6
# Two stencil nodes closer than this (relative to the stencil radius) count as duplicates.
_DUPLICATE_TOL = 1e-12


# ---------------------------------------------------------------------------------------------
# operator keys: the canonical forms of the operator specs, the only place they are spelled out
# ---------------------------------------------------------------------------------------------

VALUE: tuple = ("value",)  # interpolation: the function itself
LAPLACIAN: tuple = ("laplacian",)
NORMAL: tuple = ("normal",)  # outward normal derivative n . grad (boundary points)


def partial_key(*axes: int) -> tuple:
    """The key of `d/dx_i` (`partial_key(i)`) or `d^2/dx_i dx_j` (`partial_key(i, j)`).

    The axes must already be validated ints; two are sorted (mixed partials commute), so
    `partial_key(1, 0) == partial_key(0, 1) == ("partial", 0, 1)`.
    """
    if len(axes) == 2:
        i, j = sorted(axes)
        return ("partial", i, j)
    return ("partial", *axes)


def robin_key(alpha: float, beta: float) -> tuple:
    """The key of `alpha n . grad + beta` (floats)."""
    return ("robin", alpha, beta)


def hyperlaplacian_key(k: int) -> tuple:
    """The key of the `k`-th power of the Laplacian (an int `k >= 1`)."""
    return ("hyperlaplacian", k)


# ---------------------------------------------------------------------------------------------
# operator specs
# ---------------------------------------------------------------------------------------------


def _bad_operator(spec: Any, why: str = "") -> ValueError:
    extra = f" ({why})" if why else ""
    return ValueError(f"Unknown `operator` {spec!r}{extra}. Valid forms: {_VALID_FORMS}.")


def _as_index(value: Any, spec: Any) -> int:
    if not is_int(value):
        raise _bad_operator(spec, "coordinate indices must be ints")
    if value < 0:
        raise _bad_operator(spec, "coordinate indices must be >= 0")
    return int(value)


def _as_coefficient(value: Any, spec: Any) -> float:
    if isinstance(value, bool):
        raise _bad_operator(spec, "Robin coefficients must be real numbers")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise _bad_operator(spec, "Robin coefficients must be real numbers") from None
    if not math.isfinite(out):
        raise _bad_operator(spec, "Robin coefficients must be finite")
    return out


def canonical_operator(spec: Any) -> tuple:
    """Return the canonical, hashable tuple form of an operator spec.

    `"value"` -> `("value",)`, `"laplacian"` -> `("laplacian",)`, `"normal"` ->
    `("normal",)`, `("partial", i)` -> `("partial", i)`, `("partial", i, j)` ->
    `("partial", min(i, j), max(i, j))` (mixed partials commute), `("robin", a, b)` ->
    `("robin", float(a), float(b))`, `("hyperlaplacian", k)` -> `("hyperlaplacian", int(k))`.
    Tuple and list forms are accepted.

    **Arguments:**

    - `spec`: an operator spec (see `rbf_fd_matrix`).

    **Returns:** the canonical tuple; equal operators give equal tuples, so it can key dicts.

    **Raises:**

    - `ValueError`: for an unknown spec; the message lists the valid forms.
    """
    if isinstance(spec, str):
        spec_t: tuple = (spec,)
    elif isinstance(spec, (tuple, list)):
        spec_t = tuple(spec)
    else:
        raise _bad_operator(spec)
    if not spec_t or not isinstance(spec_t[0], str):
        raise _bad_operator(spec)
    name, rest = spec_t[0], spec_t[1:]
    for key in (VALUE, LAPLACIAN, NORMAL):
        if name == key[0]:
            if rest:
                raise _bad_operator(spec, f'"{name}" takes no parameters')
            return key
    if name == "partial":
        if len(rest) in (1, 2):
            return partial_key(*(_as_index(axis, spec) for axis in rest))
        raise _bad_operator(spec, '"partial" takes one or two coordinate indices')
    if name == "robin":
        if len(rest) != 2:
            raise _bad_operator(spec, '"robin" takes two coefficients (alpha, beta)')
        return robin_key(_as_coefficient(rest[0], spec), _as_coefficient(rest[1], spec))
    if name == "hyperlaplacian":
        if len(rest) != 1 or not is_int(rest[0]) or rest[0] < 1:
            raise _bad_operator(spec, '"hyperlaplacian" takes one int power k >= 1')
        return hyperlaplacian_key(int(rest[0]))
    raise _bad_operator(spec)


def derivative_order(spec: Any) -> int:
    """Return theta, the number of derivatives in an operator spec.

    0 for `"value"` and `("robin", 0, beta)`; 1 for `"normal"`, `("partial", i)` and
    `("robin", alpha, beta)` with `alpha != 0`; 2 for `"laplacian"` and
    `("partial", i, j)`; 2k for `("hyperlaplacian", k)`.
    """
    op = canonical_operator(spec)
    name = op[0]
    if name == "value":
        return 0
    if name == "hyperlaplacian":
        return 2 * op[1]
    if name == "laplacian":
        return 2
    if name == "normal":
        return 1
    if name == "partial":
        return len(op) - 1
    return 1 if op[1] != 0.0 else 0  # robin


def _needs_normals(op: tuple) -> bool:
    return op[0] == "normal" or (op[0] == "robin" and op[1] != 0.0)


# ---------------------------------------------------------------------------------------------
# sizes
# ---------------------------------------------------------------------------------------------


def polynomial_degree(order: int, derivative_order: int) -> int:
    """Return `ell = order + derivative_order - 1`, the degree of the appended polynomials.

    RBF-FD weights with polynomials of total degree `ell` approximate an operator with
    `theta = derivative_order` derivatives to O(h^(ell + 1 - theta)) = O(h^order) for smooth
    functions (Sharma & Shankar 2022, section 2.2; Flyer et al. 2016).

    **Arguments:**

    - `order`: the design order of accuracy p >= 1.
    - `derivative_order`: theta >= 0 (0: interpolation, 1: gradient/normal/Robin, 2: Laplacian
      and second partials).

    **Returns:** `ell` (at least 0).
    """
    order = check_int("order", order, 1, hint="It is the design order of accuracy p.")
    derivative_order = check_int("derivative_order", derivative_order, 0, hint="It is the number of derivatives in the operator.")
    return max(order + derivative_order - 1, 0)


def phs_degree(ell: int) -> int:
    """Return the odd PHS exponent m for polynomial degree `ell`: `ell` if odd, else
    `ell - 1`, and at least 5 (as Shankar's reference code does)."""
    ell = check_int("ell", ell, 0, hint="It is the polynomial degree.")
    m = ell if ell % 2 == 1 else ell - 1
    return max(m, 5)


def _n_monomials(ell: int, dim: int) -> int:
    return math.comb(ell + dim, dim)


def stencil_size(order: int, derivative_order: int, dim: int) -> int:
    """Return the RBF-FD stencil size `n = 2 * C(ell + d, d) + 1`.

    `ell = polynomial_degree(order, derivative_order)` and `C(ell + d, d)` is the number of
    polynomials of total degree <= `ell` in `d` dimensions; twice that plus one nodes make
    the local saddle-point system reliably solvable (Sharma & Shankar 2022; Bayona et al. 2017).

    **Arguments:**

    - `order`: the design order of accuracy p >= 1.
    - `derivative_order`: theta >= 0, the number of derivatives in the operator.
    - `dim`: the spatial dimension d >= 1.

    **Returns:** the number of nearest nodes per stencil. Examples (d = 2, Laplacian): p = 2 -> 21,
    p = 3 -> 31, p = 4 -> 43, p = 5 -> 57.
    """
    dim = check_int("dim", dim, 1, hint="It is the spatial dimension.")
    ell = polynomial_degree(order, derivative_order)
    return 2 * _n_monomials(ell, dim) + 1


# ---------------------------------------------------------------------------------------------
# input validation
# ---------------------------------------------------------------------------------------------


def _as_point_array(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be a real array of shape (n, d).") from err
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"`{name}` must be a 2-D array of shape (n, d), got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        bad = int(np.argwhere(~np.all(np.isfinite(arr), axis=1))[0, 0])
        raise ValueError(f"`{name}` must be finite; row {bad} contains NaN or inf: {arr[bad]}.")
    return arr


def _check_normals(normals: Any, m: int, d: int, op: tuple) -> np.ndarray:
    if normals is None:
        raise ValueError(
            f"operator {op!r} needs `normals`: pass an (m, d) = ({m}, {d}) array of outward "
            "unit normals, one per evaluation point."
        )
    arr = _as_point_array(normals, "normals")
    if arr.shape != (m, d):
        raise ValueError(
            f"`normals` must have shape (m, d) = ({m}, {d}) (one per evaluation point), got "
            f"{arr.shape}."
        )
    if m:
        deviation = float(np.max(np.abs(np.linalg.norm(arr, axis=1) - 1.0)))
        if deviation > 1e-6:
            raise ValueError(
                f"`normals` must have unit length (largest deviation {deviation:.3g}); "
                "normalise them: normals / np.linalg.norm(normals, axis=1, keepdims=True)."
            )
    return arr


# ---------------------------------------------------------------------------------------------
# local systems
# ---------------------------------------------------------------------------------------------


def _monomial_exponents(dim: int, ell: int) -> np.ndarray:
    """(M, d) exponents of all monomials of total degree <= ell, sorted by degree."""
    exps = [
        e
        for deg in range(ell + 1)
        for e in itertools.product(range(deg + 1), repeat=dim)
        if sum(e) == deg
    ]
    return np.array(exps, dtype=np.int64).reshape(len(exps), dim)


def _primitive_terms(op: tuple, d: int, normals: np.ndarray | None) -> list:
    """Decompose an operator into `(primitive, theta, coefficient)` terms.

    `primitive` is `("value",)`, `("lap",)`, `("lapk", k)`, `("d", i)` or `("dd", i, j)`;
    `coefficient` is a float or an (m,) array (per evaluation point, normals).
    """
    name = op[0]
    if name == "value":
        return [(("value",), 0, 1.0)]
    if name == "laplacian":
        return [(("lap",), 2, 1.0)]
    if name == "hyperlaplacian":
        return [(("lapk", op[1]), 2 * op[1], 1.0)]
    if name == "partial":
        for i in op[1:]:
            if i >= d:
                raise ValueError(
                    f"`operator` {op!r} differentiates along coordinate {i}, but the nodes are "
                    f"{d}-D (indices 0..{d - 1})."
                )
        if len(op) == 2:
            return [(("d", op[1]), 1, 1.0)]
        return [(("dd", op[1], op[2]), 2, 1.0)]
    if name == "normal":
        assert normals is not None  # _needs_normals(op): rbf_fd_matrix checked them
        return [(("d", i), 1, normals[:, i]) for i in range(d)]
    alpha, beta = op[1], op[2]  # robin
    terms: list[tuple[tuple, int, Any]] = []
    if alpha != 0.0:
        assert normals is not None  # _needs_normals(op): rbf_fd_matrix checked them
        terms += [(("d", i), 1, alpha * normals[:, i]) for i in range(d)]
    if beta != 0.0 or alpha == 0.0:
        terms.append((("value",), 0, beta))
    return terms


def _kernel_rhs(prim: tuple, X: np.ndarray, r: np.ndarray, m: int) -> np.ndarray:
    """L phi(|x - x_j|) at x = 0 for phi = r^m; X (b, n, d) scaled node offsets, r = |X|."""
    d = X.shape[-1]
    kind = prim[0]
    if kind == "value":
        return r**m
    if kind == "lap":
        return m * (m + d - 2) * r ** (m - 2)
    if kind == "lapk":  # Delta r^q = q (q + d - 2) r^(q - 2), applied k times
        c = 1.0
        for j in range(prim[1]):
            c *= (m - 2 * j) * (m - 2 * j + d - 2)
        return c * r ** (m - 2 * prim[1])
    if kind == "d":  # d/dx_i r^m = m r^(m-2) (x_i - x_j,i), at x = 0
        return -m * r ** (m - 2) * X[..., prim[1]]
    i, j = prim[1], prim[2]
    out = m * (m - 2) * r ** (m - 4) * X[..., i] * X[..., j]
    if i == j:
        out = out + m * r ** (m - 2)
    return out


def _poly_rhs(prim: tuple, exps: np.ndarray) -> np.ndarray:
    """L x^alpha at x = 0 for every monomial exponent alpha (rows of `exps`)."""
    d = exps.shape[1]
    deg = exps.sum(axis=1)
    kind = prim[0]
    if kind == "value":
        return (deg == 0).astype(np.float64)
    if kind == "d":
        return ((deg == 1) & (exps[:, prim[1]] == 1)).astype(np.float64)
    if kind == "lap":
        return 2.0 * ((deg == 2) & (exps.max(axis=1) == 2)).astype(np.float64)
    if kind == "lapk":
        # Delta^k = sum over k_1 + ... + k_d = k of k!/prod(k_i!) prod d^(2 k_i)/dx_i^(2 k_i):
        # nonzero at 0 only on x^(2 k_1, ..., 2 k_d), where it is k! prod (2 k_i)!/k_i!
        k = prim[1]
        even = np.all(exps % 2 == 0, axis=1) & (deg == 2 * k)
        val = np.array([math.factorial(k) * math.prod(math.factorial(int(a)) // math.factorial(int(a) // 2) for a in e)
                        for e in exps], dtype=np.float64)
        return np.where(even, val, 0.0)
    i, j = prim[1], prim[2]
    target = np.zeros(d, dtype=np.int64)
    target[i] += 1
    target[j] += 1
    hit = np.all(exps == target, axis=1).astype(np.float64)
    return 2.0 * hit if i == j else hit


def _solve_chunk(
    rows: np.ndarray,
    points: np.ndarray,
    nodes: np.ndarray,
    idx: np.ndarray,
    radius: np.ndarray,
    terms: list,
    exps: np.ndarray,
    m: int,
) -> np.ndarray:
    """RBF-FD weights (b, n) for the evaluation points `rows` (one batched solve)."""
    b, n = idx.shape
    n_poly = exps.shape[0]
    X = (nodes[idx] - points[:, None, :]) / radius[:, None, None]  # (b, n, d)
    r = np.linalg.norm(X, axis=-1)  # (b, n)
    diff = X[:, :, None, :] - X[:, None, :, :]
    R = np.sqrt(np.einsum("bijd,bijd->bij", diff, diff))  # (b, n, n)
    del diff

    off = R + np.where(np.eye(n, dtype=bool), np.inf, 0.0)
    close = off.reshape(b, -1).min(axis=1) <= _DUPLICATE_TOL
    if np.any(close):
        k = int(np.argmax(close))
        a, c = np.unravel_index(np.argmin(off[k]), (n, n))
        raise ValueError(
            f"`nodes` contains duplicates: nodes {int(idx[k, a])} and {int(idx[k, c])} coincide "
            f"(they are both in the stencil of evaluation point {int(rows[k])}), which makes "
            "its RBF-FD system singular. Remove duplicate nodes."
        )

    # Monomials x^alpha of the scaled offsets: (b, n, M).
    powers = X[..., None] ** np.arange(exps.max(initial=0) + 1)  # (b, n, d, ell + 1)
    P = np.ones((b, n, n_poly))
    for dim in range(X.shape[-1]):
        P *= powers[:, :, dim, :][:, :, exps[:, dim]]

    size = n + n_poly
    M = np.zeros((b, size, size))
    M[:, :n, :n] = R**m
    M[:, :n, n:] = P
    M[:, n:, :n] = np.swapaxes(P, 1, 2)

    rhs = np.zeros((b, size))
    for prim, theta, coef in terms:
        coef = np.asarray(coef, dtype=np.float64)
        coef = coef[rows] if coef.ndim else np.full(b, float(coef))
        scale = coef * radius ** (-float(theta))  # undo the stencil scaling
        rhs[:, :n] += scale[:, None] * _kernel_rhs(prim, X, r, m)
        rhs[:, n:] += scale[:, None] * _poly_rhs(prim, exps)[None, :]

    try:
        sol = np.linalg.solve(M, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        for k in range(b):
            try:
                np.linalg.solve(M[k], rhs[k])
            except np.linalg.LinAlgError:
                raise _singular(int(rows[k])) from None
        raise  # pragma: no cover - the batched solve failed but no single one did
    resid = np.abs(np.einsum("bij,bj->bi", M, sol) - rhs).max(axis=1)
    bound = np.abs(M).sum(axis=2).max(axis=1) * np.abs(sol).max(axis=1) + np.abs(rhs).max(axis=1)
    bad = ~np.isfinite(sol).all(axis=1) | ~(resid <= _RESIDUAL_TOL * bound)
    if np.any(bad):
        raise _singular(int(rows[int(np.argmax(bad))]))
    return sol[:, :n]


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Limit BLAS/LAPACK to one thread while the many small local systems are solved.

    Each local system is small (n + C(ell + d, d) <= ~250 unknowns), so a multi-threaded
    LAPACK gains nothing inside one factorisation, and its spinning worker threads slow the
    batched solve down by up to two orders of magnitude when the CPU cores are shared
    (measured: 3-D Laplacian, 3000 nodes, order 4: 48 s threaded vs 6.7 s on one thread on a
    loaded 2-core machine). Uses `threadpoolctl` when it is installed; a no-op otherwise.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _singular(row: int) -> ValueError:
    return ValueError(
        f"The RBF-FD system of evaluation point {row} is singular or too ill-conditioned to "
        "solve (duplicate or nearly coincident nodes, or nodes on a lower-dimensional set such "
        "as a line in 2-D). Check `nodes` for duplicates, or lower `order`."
    )


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------


def rbf_fd_matrix(
    points: Any,
    nodes: Any,
    operator: Any,
    *,
    order: int = 4,
    normals: Any = None,
    stencil_size: int | None = None,
) -> scipy.sparse.csr_matrix:
    """Return the sparse RBF-FD differentiation matrix of `operator`.

    Row i holds the weights that approximate `operator` applied to a function sampled at
    `nodes`, evaluated at `points[i]`: `(L f)(points) ~ D @ f(nodes)`.

    Method: the stencil of each evaluation point is its `n` nearest nodes (cKDTree). On the
    stencil, shifted to the evaluation point and scaled to unit radius, the weights solve the
    saddle-point system of the polyharmonic spline `r^m` augmented with all monomials of total
    degree <= `ell` (see the module docstring), with `ell = order + theta - 1`,
    `n = 2 C(ell + d, d) + 1` and `m` the odd number `ell` or `ell - 1`, at least 5.
    The weights differentiate all polynomials of degree <= `ell` exactly (to round-off), and
    the error for smooth functions on quasi-uniform nodes with spacing h is O(h^order).

    **Arguments:**

    - `points`: (m, d) evaluation points (often the nodes themselves, or a subset of them).
    - `nodes`: (N, d) nodes at which the function is sampled (the matrix columns), N >= n.
    - `operator`: one of `"value"` (interpolation, theta = 0), `"laplacian"` (theta = 2),
      `"normal"` (n . grad, theta = 1, needs `normals`), `("partial", i)`
      (d/dx_i, theta = 1), `("partial", i, j)` (d^2/dx_i dx_j, theta = 2) or
      `("robin", alpha, beta)` (alpha n . grad + beta, needs `normals` unless
      alpha == 0; theta = 1, or 0 if alpha == 0) or `("hyperlaplacian", k)` (the
      k-th power of the Laplacian, theta = 2k; hyperviscosity). Tuple forms
      `("value",)` etc. are accepted too.
    - `order`: the design order of accuracy p >= 1 (default 4).
    - `normals`: (m, d) outward unit normals at `points` (unit length to 1e-6); needed by
      `"normal"` and `"robin"` (alpha != 0), ignored otherwise.
    - `stencil_size`: override the stencil size n (at least the number of polynomials
      C(ell + d, d), at most N).

    **Returns:** a `scipy.sparse.csr_matrix` of shape (m, N), float64, with n entries per row.

    **Raises:**

    - `ValueError`: naming the argument, for bad shapes, non-finite input, fewer nodes
      than the stencil needs, missing or non-unit normals, an unknown operator, duplicate
      nodes (or otherwise singular local systems; the message names the evaluation point).
    - `TypeError`: for arguments of the wrong type.

    Cost: O(m n^3) flops for the local solves (n = 43 for the 2-D Laplacian at order 4) plus
    O((N + m) log N) for the k-d tree; memory is bounded by solving the systems in chunks.

    Reference: Sharma & Shankar, NeurIPS 2022, section 2.2; Flyer, Fornberg, Bayona & Barnett,
    J. Comput. Phys. 321 (2016).
    """
    op = canonical_operator(operator)
    points = _as_point_array(points, "points")
    nodes = _as_point_array(nodes, "nodes")
    n_pts, d = points.shape
    if nodes.shape[1] != d:
        raise ValueError(
            f"`points` are {d}-D but `nodes` are {nodes.shape[1]}-D; both must have shape "
            "(., d) with the same d."
        )
    theta = derivative_order(op)
    ell = polynomial_degree(order, theta)
    # the kernel must survive theta derivatives (r^(m - theta) with m - theta >= 1)
    m = max(phs_degree(ell), theta + 1 if theta % 2 == 0 else theta + 2)
    normals_arr = _check_normals(normals, n_pts, d, op) if _needs_normals(op) else None
    terms = _primitive_terms(op, d, normals_arr)
    n_poly = _n_monomials(ell, d)
    n_nodes = nodes.shape[0]
    if stencil_size is None:
        n = 2 * n_poly + 1
        if n_nodes < n:
            raise ValueError(
                f"`nodes` has {n_nodes} nodes, but an RBF-FD stencil for operator {op!r} "
                f"(theta = {theta}) at order={order} in {d}-D needs {n} nodes "
                f"(polynomial degree {ell}, n = 2 * C({ell}+{d}, {d}) + 1). Use more nodes or "
                "lower `order`."
            )
    else:
        n = check_int("stencil_size", stencil_size, 1, hint="It is the number of nearest nodes per stencil (None: the default for `order`).")
        if n < n_poly:
            raise ValueError(
                f"`stencil_size`={n} is smaller than the {n_poly} polynomials of degree {ell} "
                f"in {d}-D that order={order} needs for operator {op!r}; use at least "
                f"{2 * n_poly + 1} (the default) or lower `order`."
            )
        if n > n_nodes:
            raise ValueError(
                f"`stencil_size`={n} exceeds the number of `nodes` ({n_nodes}); use more nodes "
                "or a smaller stencil (lower `order`)."
            )
    if n_pts == 0:
        return scipy.sparse.csr_matrix((0, n_nodes))

    tree = scipy.spatial.cKDTree(nodes)
    dist, idx = tree.query(points, k=n)
    dist = np.asarray(dist, dtype=np.float64).reshape(n_pts, n)
    idx = np.asarray(idx, dtype=np.int64).reshape(n_pts, n)
    radius = dist[:, -1].copy()
    if np.any(radius <= 0.0):
        row = int(np.argmax(radius <= 0.0))
        raise ValueError(
            f"All {n} stencil nodes of evaluation point {row} coincide with it: `nodes` "
            "contains duplicates. Remove them."
        )
    exps = _monomial_exponents(d, ell)

    size = n + n_poly
    per_system = 8 * (3 * size * size + n * n * d)
    chunk = max(1, _CHUNK_BYTES // per_system)
    weights = np.empty((n_pts, n))
    with _one_blas_thread():
        for start in range(0, n_pts, chunk):
            rows = np.arange(start, min(start + chunk, n_pts))
            weights[rows] = _solve_chunk(
                rows, points[rows], nodes, idx[rows], radius[rows], terms, exps, m
            )
    if n_pts > 1:
        # Ill-conditioned stencils that still pass the residual check: weights far larger (in
        # units of the stencil radius^-theta) than the node set's typical ones. At interior
        # points of scattered or jittered nodes the largest is < 2x the median (measured: disk,
        # 2-D grid, 3-D ball, Laplacian at order 4); one-sided stencils at boundary points of a
        # small 2-D grid reach 2e3x (300 nodes) and are accurate; on an exact 3-D grid near the
        # faces 1e13x, with derivatives wrong by 1e11.
        scaled = np.abs(weights).max(axis=1) * radius**theta
        median = float(np.median(scaled))
        worst = int(np.argmax(scaled))
        if scaled[worst] > _WEIGHT_GROWTH * median:
            raise ValueError(
                f"The RBF-FD stencil of evaluation point {worst} is ill-conditioned: its largest weight "
                f"is {scaled[worst] / median:.3g} times the node set's median (scaled by the stencil "
                "radius), so its derivatives would be wrong. Nodes on a lattice or on a few planes "
                "cause this (e.g. an exact 3-D tensor grid); jitter the nodes by a fraction of their "
                "spacing, or lower `order`."
            )
    indptr = np.arange(0, n_pts * n + 1, n)
    mat = scipy.sparse.csr_matrix(
        (weights.ravel(), idx.ravel(), indptr), shape=(n_pts, n_nodes)
    )
    mat.sort_indices()
    return mat


def ghost_nodes(cloud: Any, *, factor: float = 0.25) -> np.ndarray:
    """Return one ghost node outside the domain per boundary node of `cloud`.

    Ghost node k is `boundary[k] + factor * h * normals[k]` with `h = N^(-1/d)` and N the
    total number of nodes (interior + boundary). Ghost nodes make boundary stencils less
    one-sided, which stabilises derivative boundary conditions and lets the PDE be enforced on
    the boundary as well (Sharma & Shankar 2022, section 2.2, "Ghost points").

    **Arguments:**

    - `cloud`: a `pdesolve.PointCloud` with boundary nodes and outward unit normals
      (e.g. `pds.Ball([0., 0.], 1.).node_set(n)`).
    - `factor`: offset along the normal in units of h (default 0.25, finite and > 0).

    **Returns:** an (N_b, d) float64 array, in the order of `cloud.boundary`. Cost O(N_b d).
    """
    from ._geometry import PointCloud  # (imported here: the geometry's node sets use this module)

    if not isinstance(cloud, PointCloud):
        raise TypeError(
            f"`cloud` must be a pdesolve.PointCloud (with interior, boundary and normals), "
            f"got {type(cloud).__name__}; build one with e.g. `pds.Ball(c, r).node_set(n)`."
        )
    try:
        factor = float(factor)
    except (TypeError, ValueError):
        raise TypeError(f"`factor` must be a real number, got {factor!r}.") from None
    if not (math.isfinite(factor) and factor > 0.0):
        raise ValueError(f"`factor` must be a finite number > 0, got {factor}.")
    interior = np.asarray(cloud.interior, dtype=np.float64)
    boundary = np.asarray(cloud.boundary, dtype=np.float64)
    normals = np.asarray(cloud.normals, dtype=np.float64)
    if boundary.ndim != 2 or boundary.shape[0] == 0:
        raise ValueError(
            "`cloud` has no boundary nodes, so it has no ghost nodes; build it with boundary "
            "nodes and outward normals (e.g. from `Ball.node_set` / `Box.node_set`)."
        )
    if normals.shape != boundary.shape or not np.all(np.isfinite(normals)):
        raise ValueError(
            f"`cloud.normals` must be finite with the shape of `cloud.boundary` "
            f"{boundary.shape}, got {normals.shape}."
        )
    n_total = interior.shape[0] + boundary.shape[0]
    h = n_total ** (-1.0 / boundary.shape[1])
    return boundary + factor * h * normals


def _spec_list(specs: Any, name: str) -> list:
    """An iterable of operator specs as a list; a single spec ("laplacian", ("partial", 0))
    is accepted as a list of one."""
    if isinstance(specs, str):
        return [specs]
    one_tuple_spec = (  # e.g. ("partial", 0) or ("robin", 1, 0)
        isinstance(specs, tuple)
        and bool(specs)
        and isinstance(specs[0], str)
        and not any(isinstance(s, (str, tuple, list)) for s in specs[1:])
    )
    if one_tuple_spec:
        return [specs]
    try:
        return list(specs)
    except TypeError:
        raise TypeError(
            f"`{name}` must be an iterable of operator specs, e.g. [\"laplacian\"]; got "
            f"{specs!r}."
        ) from None


def assemble(
    cloud: Any,
    operators: Iterable[Any],
    *,
    order: int = 4,
    boundary_operators: Iterable[Any] = (),
    ghost: bool = True,
) -> dict:
    """Assemble the RBF-FD matrices a DT-PINN needs on a point cloud.

    Columns (the nodes the network is evaluated at) are ordered `[interior, boundary, ghost]`
    (ghost nodes from `ghost_nodes` only if `ghost=True`). PDE operators are evaluated
    at the interior and boundary nodes (rows `[interior, boundary]`, N_i + N_b rows);
    boundary operators at the boundary nodes (N_b rows), with the cloud's outward normals.

    **Arguments:**

    - `cloud`: a `pdesolve.PointCloud` (interior, boundary, normals).
    - `operators`: operator specs for the PDE (see `rbf_fd_matrix`; not `"normal"` or
      `"robin"`, which need normals that interior nodes do not have). A single spec is
      accepted as a list of one.
    - `order`: the design order of accuracy p (default 4).
    - `boundary_operators`: operator specs for the boundary conditions (any, including
      `"normal"` and `("robin", alpha, beta)`); a single spec is accepted as a list of one.
    - `ghost`: whether to append ghost nodes outside the boundary (default True).

    **Returns:** a dict with `"nodes"` (the (N_i + N_b [+ N_b], d) column nodes), `"pde"` and
    `"boundary"` (each `{spec: csr}`, keyed by `canonical_operator` forms). With ghost nodes
    the PDE matrices are (N_i + N_b) x (N_i + 2 N_b) and the boundary ones N_b x (N_i +
    2 N_b) (L and B of Sharma & Shankar 2022).

    Cost: one `rbf_fd_matrix` call per distinct operator.
    """
    from ._geometry import PointCloud

    if not isinstance(cloud, PointCloud):
        raise TypeError(
            f"`cloud` must be a pdesolve.PointCloud, got {type(cloud).__name__}; build one with "
            "e.g. `pds.Ball(c, r).node_set(n)`."
        )
    operators = _spec_list(operators, "operators")
    boundary_operators = _spec_list(boundary_operators, "boundary_operators")
    interior = np.asarray(cloud.interior, dtype=np.float64)
    boundary = np.asarray(cloud.boundary, dtype=np.float64)
    normals = np.asarray(cloud.normals, dtype=np.float64)
    parts = [interior, boundary]
    if ghost:
        parts.append(ghost_nodes(cloud))
    nodes = np.concatenate(parts, axis=0)
    points = np.concatenate([interior, boundary], axis=0)

    pde = {}
    for spec in operators:
        op = canonical_operator(spec)
        if _needs_normals(op):
            raise ValueError(
                f"PDE operator {op!r} needs normals, which only boundary nodes have; pass it "
                "in `boundary_operators` instead."
            )
        if op not in pde:
            pde[op] = rbf_fd_matrix(points, nodes, op, order=order)
    bnd = {}
    for spec in boundary_operators:
        op = canonical_operator(spec)
        if op not in bnd:
            if boundary.shape[0] == 0:
                raise ValueError(
                    "`boundary_operators` were given but `cloud` has no boundary nodes."
                )
            bnd[op] = rbf_fd_matrix(boundary, nodes, op, order=order, normals=normals)
    return {"nodes": nodes, "pde": pde, "boundary": bnd}
