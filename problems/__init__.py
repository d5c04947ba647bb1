"""The pdesolve problem catalogue (in the spirit of Julia's DiffEqProblemLibrary).

Each function returns a ready problem object to pass to `pdesolve.solve`:

    from pdesolve.problems import arenstorf, reference_solution
    prob = arenstorf()
    sol = pds.solve(prob, pds.Dopri5(), controller=pds.PIDController(rtol=1e-8, atol=1e-10))

`CATALOGUE` maps each problem's name to `(constructor, one-line description)`; every
constructor there can be called with no arguments.
"""

from collections.abc import Callable as _Callable
from types import ModuleType as _ModuleType

from .advection import (
    advection as advection,
    advection_boundary_bound as advection_boundary_bound,
)
from .detest import (
    ARENSTORF_PERIOD as ARENSTORF_PERIOD,
    arenstorf as arenstorf,
    brusselator as brusselator,
    euler_rigid_body as euler_rigid_body,
    lotka_volterra as lotka_volterra,
    pleiades as pleiades,
    reference_solution as reference_solution,
)
from .fokker_planck import (
    fokker_planck as fokker_planck,
    fokker_planck_drift as fokker_planck_drift,
    fokker_planck_drift_divergence as fokker_planck_drift_divergence,
)
from .kuramoto_sivashinsky import (
    KS_LENGTH as KS_LENGTH,
    CircularStencil as CircularStencil,
    KSNonlinearity as KSNonlinearity,
    SINODEMLP as SINODEMLP,
    etdrk4_coefficients as etdrk4_coefficients,
    ks_etdrk4 as ks_etdrk4,
    ks_initial_condition as ks_initial_condition,
    ks_linear_operator as ks_linear_operator,
    ks_linear_stencil as ks_linear_stencil,
    ks_reference_data as ks_reference_data,
    ks_semidiscrete as ks_semidiscrete,
    kuramoto_sivashinsky as kuramoto_sivashinsky,
    sinode_model as sinode_model,
)
from .poisson_disk import (
    disk_exact as disk_exact,
    heat_disk as heat_disk,
    heat_exact as heat_exact,
    nonlinear_poisson_disk as nonlinear_poisson_disk,
    poisson_disk as poisson_disk,
    robin_poisson_disk as robin_poisson_disk,
)
from .spiral import (
    SpiralField as SpiralField,
    make_mlp as make_mlp,
    spiral_data as spiral_data,
    spiral_problem as spiral_problem,
    true_spiral_problem as true_spiral_problem,
)
from .vlasov import (
    vlasov as vlasov,
    vlasov_field as vlasov_field,
)
from .wave import (
    WAVE_SHARPNESS as WAVE_SHARPNESS,
    wave3d as wave3d,
    wave3d_exact as wave3d_exact,
    wave3d_pulse as wave3d_pulse,
)
from .wave_fd import (
    WaveFDResult as WaveFDResult,
    wave3d_fd_error as wave3d_fd_error,
    wave3d_finite_difference as wave3d_finite_difference,
)
from .wave_maps import (
    schwarzschild_metric as schwarzschild_metric,
    wave_maps as wave_maps,
    wave_maps_coefficients as wave_maps_coefficients,
)
from .white_dwarf import (
    WHITE_DWARF_DT as WHITE_DWARF_DT,
    WHITE_DWARF_N_STEPS as WHITE_DWARF_N_STEPS,
    WhiteDwarfMLP as WhiteDwarfMLP,
    white_dwarf as white_dwarf,
    white_dwarf_data as white_dwarf_data,
    white_dwarf_model as white_dwarf_model,
    white_dwarf_neural_problem as white_dwarf_neural_problem,
)

CATALOGUE: dict[str, tuple[_Callable, str]] = {
    "lotka_volterra": (
        lotka_volterra,
        "DETEST B1: Lotka–Volterra predator–prey, y0=(1, 3), t in [0, 20] (Hull et al. 1972).",
    ),
    "euler_rigid_body": (
        euler_rigid_body,
        "DETEST B5: Euler's free rigid-body equations, y0=(0, 1, 1), t in [0, 20] (Hull et al. 1972).",
    ),
    "arenstorf": (
        arenstorf,
        "Arenstorf periodic orbit of the restricted three-body problem, one period (Hairer I, II.0).",
    ),
    "brusselator": (
        brusselator,
        "Non-stiff Brusselator oscillator, A=1, B=3, y0=(1.5, 3), t in [0, 20] (Hairer I, II.10).",
    ),
    "pleiades": (
        pleiades,
        "Pleiades: seven-body planar gravitation, 28 states, t in [0, 3] (Hairer I, II.10).",
    ),
    "spiral": (
        true_spiral_problem,
        "True cubic spiral dy/dt = (y**3) @ A of the neural-ODE demo, t in [0, 25] (Chen et al. 2018).",
    ),
    "white_dwarf": (
        white_dwarf,
        "Chandrasekhar's white dwarf equation, C=0.001, t shifted by 0.5, y0=(1, 0), t in [0, 5] "
        "(McCallum & Foster 2024).",
    ),
    "kuramoto_sivashinsky": (
        kuramoto_sivashinsky,
        "SINODE neural ODE for Kuramoto–Sivashinsky data, L=22, N=64: MLP + fixed 5-point stencil, "
        "ETDRK4 data (Zhang, Liu & Maulik 2023).",
    ),
    "poisson_disk": (
        poisson_disk,
        "Linear Poisson Δu = f on the unit disk, Dirichlet, u = 1 + sin(πx)cos(πy) (Sharma & Shankar 2022).",
    ),
    "nonlinear_poisson_disk": (
        nonlinear_poisson_disk,
        "Nonlinear Poisson Δu = exp(u) + f on the unit disk, Dirichlet, u = 1 + sin(πx)cos(πy) "
        "(Sharma & Shankar 2022).",
    ),
    "robin_poisson_disk": (
        robin_poisson_disk,
        "Linear Poisson on the unit disk with the Robin condition n·∇u + u = g, u = 1 + sin(πx)cos(πy) "
        "(Sharma & Shankar 2022).",
    ),
    "heat_disk": (
        heat_disk,
        "Forced heat equation u_t = Δu + f on the unit disk, t in [0, 1], Dirichlet, "
        "u = 1 + sin(πx)cos(πy)sin(πt) (Sharma & Shankar 2022).",
    ),
    "wave3d": (
        wave3d,
        "3-D wave equation [phi, phi_t] on [-1, 1]^3, exact spherical pulse (f(t-r) - f(t+r))/r, "
        "T=0.5 (Finzi et al. 2023, B.1).",
    ),
    "advection": (
        advection,
        "Advection u_t + c.grad u = 0 of a Gaussian bump on [-1, 1]^2, c=(1, 1), T=0.5, exact "
        "solution (fast smoke test).",
    ),
    "fokker_planck": (
        fokker_planck,
        "Harmonic-trap Fokker-Planck equation, d=8 interacting particles on [-1, 1]^8, T=1, no "
        "exact solution (Finzi et al. 2023, B.3).",
    ),
    "vlasov": (
        vlasov,
        "6-D Vlasov equation, fixed field E = grad exp(-|x|^2), Gaussian IC sigma=0.3, T=1, no "
        "exact solution (Finzi et al. 2023, B.2).",
    ),
    "wave_maps": (
        wave_maps,
        "Wave-maps equation [phi, pi] on a Schwarzschild background (r_s=1, c=(-2, 0, 0)), wave "
        "packet, T=0.5 (Finzi et al. 2023, sec. 5).",
    ),
}

# Everything imported above with `name as name` (the submodules themselves excepted).
__all__ = sorted(
    name for name, value in globals().items() if not name.startswith("_") and not isinstance(value, _ModuleType)
)
