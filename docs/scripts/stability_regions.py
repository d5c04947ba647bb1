"""Linear stability regions of `pds.ReversibleRK` for every explicit base tableau.

On the test equation `y' = μ y` with `z = h μ`, an explicit Runge–Kutta method multiplies
the state by its stability function

    R(z) = 1 + z bᵀ (I − z A)⁻¹ 1,

so its increment is `Ψ_h(x) = (R(z) − 1) x` and, with a negative step,
`Ψ_{−h}(x) = (R(−z) − 1) x`. One step of the reversible method of McCallum & Foster
(arXiv 2410.11648),

    Y_{n+1} = λ Y_n + (1 − λ) Z_n + Ψ_h(Z_n),    Z_{n+1} = Z_n − Ψ_{−h}(Y_{n+1}),

is then the linear map `(Y_{n+1}, Z_{n+1}) = M(z) (Y_n, Z_n)` with

    M(z) = [[ λ,               R(z) − λ                           ],
            [ −λ (R(−z) − 1),  1 − (R(−z) − 1)(R(z) − λ)          ]],

`det M(z) = λ` for every `z`. The step is (forward) stable where the spectral radius
`ρ(M(z)) ≤ 1`. This script plots that set for several couplings `λ`, one panel per base
method, over the base method's own region `|R(z)| ≤ 1`.

Usage (from the repository root):

    python docs/scripts/stability_regions.py                        # docs/img/stability_regions.png
    python docs/scripts/stability_regions.py --out /tmp/regions.png --lambdas 0.999 0.9 0.5
    python docs/scripts/stability_regions.py --resolution 200       # coarser, faster

The functions `stability_function`, `reversible_step_matrix`, `spectral_radius`,
`reversible_spectral_radius` and `base_tableaux` are importable (the tests load this file
with importlib). Only numpy is needed for them; matplotlib (Agg backend) for the figure.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pdesolve.solvers.explicit_rk import METHOD_NAMES

#: The explicit base methods plotted, in order (names of `pdesolve` solver classes).
BASE_METHODS = METHOD_NAMES
#: Couplings plotted by default (the first is `ReversibleRK`'s default).
DEFAULT_LAMBDAS = (0.999, 0.99, 0.9, 0.5)
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "img" / "stability_regions.png"


def base_tableaux(names=BASE_METHODS) -> dict:
    """`{name: pds.ButcherTableau}` for the named `pdesolve` explicit RK solvers."""
    import pdesolve as pds

    return {name: getattr(pds, name).tableau for name in names}


def _as_tableau(tableau):
    """Accept a `ButcherTableau`, a solver class/instance with `.tableau`, or a solver name."""
    if isinstance(tableau, str):
        import pdesolve as pds

        tableau = getattr(pds, tableau)
    return getattr(tableau, "tableau", tableau)


def stability_function(tableau, z):
    """`R(z) = 1 + z bᵀ (I − z A)⁻¹ 1` of a Runge–Kutta tableau, elementwise in `z`.

    **Arguments:**

    - `tableau`: a `pds.ButcherTableau` (or a solver such as `pds.RK4`, or its name).
    - `z`: complex (or real) scalar or array, `z = h μ`.

    **Returns:** complex array of `z`'s shape. For explicit tableaux (`A` strictly lower
    triangular) the stage vector `k = (I − zA)⁻¹ 1` is found by forward substitution,
    which is exact algebra (a polynomial of degree ≤ s in `z`); otherwise by a batched
    linear solve.
    """
    _, A, b, _ = _as_tableau(tableau).as_arrays()
    z = np.asarray(z, dtype=complex)
    s = len(b)
    if np.allclose(np.triu(A), 0.0):
        k = []
        for i in range(s):
            acc = np.ones_like(z)
            for j in range(i):
                if A[i, j] != 0.0:
                    acc = acc + z * A[i, j] * k[j]
            k.append(acc)
        return 1.0 + z * sum(b[i] * k[i] for i in range(s))
    lhs = np.eye(s) - z[..., None, None] * A  # (..., s, s)
    k = np.linalg.solve(lhs, np.ones(z.shape + (s, 1), dtype=complex))[..., 0]
    return 1.0 + z * (k @ b)


def reversible_step_matrix(tableau, z, lam):
    """The 2×2 matrix `M(z)` of one `ReversibleRK` step on `y' = μ y`, `z = h μ`.

    `(Y_{n+1}, Z_{n+1}) = M(z) (Y_n, Z_n)` with `M = [[λ, R(z) − λ], [−λ(R(−z) − 1),
    1 − (R(−z) − 1)(R(z) − λ)]]`, `R` the base tableau's stability function. `det M = λ`.

    **Returns:** complex array of shape `z.shape + (2, 2)`.
    """
    z = np.asarray(z, dtype=complex)
    lam = float(lam)
    rp = stability_function(tableau, z)
    rm1 = stability_function(tableau, -z) - 1.0
    M = np.empty(z.shape + (2, 2), dtype=complex)
    M[..., 0, 0] = lam
    M[..., 0, 1] = rp - lam
    M[..., 1, 0] = -lam * rm1
    M[..., 1, 1] = 1.0 - rm1 * (rp - lam)
    return M


def spectral_radius(M):
    """Largest eigenvalue modulus of each 2×2 matrix in `M` (shape `(..., 2, 2)`).

    Uses the characteristic polynomial `x² − tr x + det`: the larger root in modulus is
    formed without cancellation and the other as `det / root`.
    """
    M = np.asarray(M, dtype=complex)
    tr = M[..., 0, 0] + M[..., 1, 1]
    det = M[..., 0, 0] * M[..., 1, 1] - M[..., 0, 1] * M[..., 1, 0]
    disc = np.sqrt(tr * tr - 4.0 * det)
    big = np.where(np.abs(tr + disc) >= np.abs(tr - disc), tr + disc, tr - disc) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        small = np.where(big != 0, det / np.where(big != 0, big, 1.0), 0.0)
    return np.maximum(np.abs(big), np.abs(small))


def reversible_spectral_radius(tableau, z, lam):
    """`ρ(M(z))` for the reversible method with base `tableau` and coupling `lam`."""
    return spectral_radius(reversible_step_matrix(tableau, z, lam))


def plot_regions(
    out=DEFAULT_OUT,
    lambdas=DEFAULT_LAMBDAS,
    *,
    methods=BASE_METHODS,
    resolution: int = 500,
    re_range=(-4.0, 1.0),
    im_range=(-4.0, 4.0),
    dpi: int = 120,
):
    """Plot `{z : ρ(M(z)) ≤ 1}` per base method and `λ`, over `{|R(z)| ≤ 1}`; save to `out`.

    `resolution` is the number of grid points along the imaginary axis (the real axis gets
    a proportional number). Returns the output path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    lambdas = sorted((float(lam) for lam in lambdas), reverse=True)
    for lam in lambdas:
        if not 0.0 < lam <= 1.0:
            raise ValueError(f"every λ must lie in (0, 1]; got {lam}.")
    tabs = base_tableaux(methods)
    n_im = int(resolution)
    n_re = max(2, int(round(n_im * (re_range[1] - re_range[0]) / (im_range[1] - im_range[0]))))
    x = np.linspace(*re_range, n_re)
    y = np.linspace(*im_range, n_im)
    Z = x[None, :] + 1j * y[:, None]

    cmap = plt.get_cmap("viridis")
    colours = {lam: cmap(0.15 + 0.7 * i / max(1, len(lambdas) - 1)) for i, lam in enumerate(lambdas)}
    ncol = 4
    nrow = int(np.ceil(len(tabs) / ncol))
    fig, axes = plt.subplots(nrow + 1, ncol, figsize=(3.4 * ncol, 3.9 * nrow + 3.4), squeeze=False)
    for ax, (name, tab) in zip(axes[:nrow].flat, tabs.items()):
        base = np.abs(stability_function(tab, Z))
        ax.contourf(x, y, base, levels=[0.0, 1.0], colors=["0.85"])
        ax.contour(x, y, base, levels=[1.0], colors=["0.35"], linewidths=1.0, linestyles="--")
        # smallest λ (largest region) first, so the nested regions of larger λ stay visible
        for lam in reversed(lambdas):
            rho = reversible_spectral_radius(tab, Z, lam)
            ax.contourf(x, y, rho, levels=[0.0, 1.0], colors=[colours[lam]], alpha=0.9)
            ax.contour(x, y, rho, levels=[1.0], colors=[colours[lam]], linewidths=0.9)
        ax.axhline(0.0, color="k", lw=0.4)
        ax.axvline(0.0, color="k", lw=0.4)
        ax.set_title(f"{name} (s={tab.stages}, p={tab.order})", fontsize=10)
        ax.set_aspect("equal")
        ax.set_xlim(*re_range)
        ax.set_ylim(*im_range)
        ax.set_xlabel("Re z", fontsize=8)
        ax.set_ylabel("Im z", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes[:nrow].flat)[len(tabs):]:
        ax.set_visible(False)

    # Bottom row: the detail that the equal-aspect panels cannot show.
    zoom_tab = _as_tableau("RK4") if "RK4" not in tabs else tabs["RK4"]
    ax_zoom, ax_real, ax_back, ax_leg = axes[nrow]
    # (a) RK4 left of the imaginary axis, log distance: for small |z| the region is the
    #     strip ln λ ≤ Re z ≤ 0 (exactly so for the exact flow R(z) = exp(z)).
    d = np.logspace(-4.5, np.log10(-re_range[0]), max(60, n_re))  # d = −Re z
    yz = np.linspace(-3.2, 3.2, n_im)
    Zz = -d[None, :] + 1j * yz[:, None]
    base = np.abs(stability_function(zoom_tab, Zz))
    ax_zoom.contourf(d, yz, base, levels=[0.0, 1.0], colors=["0.85"])
    for lam in reversed(lambdas):
        rho = reversible_spectral_radius(zoom_tab, Zz, lam)
        ax_zoom.contourf(d, yz, rho, levels=[0.0, 1.0], colors=[colours[lam]], alpha=0.9)
        if lam < 1.0:
            ax_zoom.axvline(-np.log(lam), color="k", lw=0.6, ls=":")
    ax_zoom.set_xscale("log")
    ax_zoom.set_title("RK4, Re z < 0 on a log scale (dotted: −ln λ)", fontsize=9)
    ax_zoom.set_xlabel("−Re z", fontsize=8)
    ax_zoom.set_ylabel("Im z", fontsize=8)
    ax_zoom.tick_params(labelsize=7)
    # (b) spectral radius on the negative real axis (decaying modes): ρ − 1 < 0 is stable.
    xr = -np.logspace(-5, np.log10(-re_range[0]), 600)
    ax_real.plot(-xr, np.abs(stability_function(zoom_tab, xr)) - 1.0, color="0.35", ls="--", lw=1.0)
    for lam in lambdas:
        ax_real.plot(-xr, reversible_spectral_radius(zoom_tab, xr, lam) - 1.0, color=colours[lam], lw=1.2)
        if lam < 1.0:
            ax_real.axvline(-np.log(lam), color="k", lw=0.6, ls=":")
    ax_real.axhline(0.0, color="k", lw=0.5)
    ax_real.set_xscale("log")
    ax_real.set_yscale("symlog", linthresh=1e-4)
    ax_real.set_ylim(-1.0, 100.0)
    ax_real.set_title("RK4, real z < 0: ρ(M(z)) − 1 (< 0 stable)", fontsize=9)
    ax_real.set_xlabel("−z = h|μ|", fontsize=8)
    ax_real.set_ylabel("ρ − 1", fontsize=8)
    ax_real.tick_params(labelsize=7)
    # (c) backward reconstruction: M⁻¹ amplifies the parasitic mode by ≈ 1/λ per step.
    n = np.logspace(0, 5, 200)
    for lam in lambdas:
        ax_back.loglog(n, np.exp(np.minimum(-n * np.log(lam), 60.0)), color=colours[lam], lw=1.2)
    for eps, lab in ((np.finfo(np.float32).eps, "float32"), (np.finfo(np.float64).eps, "float64")):
        ax_back.axhline(1e-3 / eps, color="0.4", lw=0.8, ls="--")
        ax_back.text(1.2, 1.6e-3 / eps, f"{lab}: only ~3 digits left", fontsize=7, color="0.3")
    ax_back.set_ylim(1.0, 1e18)
    ax_back.set_title("backward pass: round-off growth λ^(−N)", fontsize=9)
    ax_back.set_xlabel("steps N", fontsize=8)
    ax_back.set_ylabel("amplification", fontsize=8)
    ax_back.tick_params(labelsize=7)
    ax_leg.axis("off")

    handles = [Patch(facecolor="0.85", edgecolor="0.35", linestyle="--", label="base method |R(z)| ≤ 1")]
    handles += [Patch(facecolor=colours[lam], label=f"reversible, λ = {lam:g}") for lam in lambdas]
    ax_leg.legend(handles=handles, loc="center", fontsize=9, frameon=False)
    fig.suptitle("ReversibleRK: {z = hμ : ρ(M(z)) ≤ 1} (coloured) vs base method (grey)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output PNG (default: %(default)s)")
    parser.add_argument(
        "--lambdas", type=float, nargs="+", default=list(DEFAULT_LAMBDAS), help="couplings λ in (0, 1]"
    )
    parser.add_argument("--resolution", type=int, default=500, help="grid points along Im z")
    parser.add_argument("--dpi", type=int, default=120)
    args = parser.parse_args(argv)
    out = plot_regions(args.out, args.lambdas, resolution=args.resolution, dpi=args.dpi)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
