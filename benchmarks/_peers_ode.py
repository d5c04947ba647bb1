"""PyTorch peers for `bench_ode.py --rows peers`: torchdiffeq and torchode (CPU, float64, eager).

Kept apart from bench_ode.py so that the JAX benchmark has no torch import unless the peer
rows run. Nothing here imports JAX: the benchmark hands over the equinox MLP's weights as
NumPy arrays and gets back plain callables.

Each peer configuration is a `PeerConfig` with two zero-argument callables:

* `forward()`: `y(t1)` under `torch.no_grad()` (no autograd graph, as a user's inference);
* `gradient()`: the gradient of `sum(y(t1)**2)` w.r.t. the MLP parameters and `y0`, as a tuple
  of tensors in the module's parameter order followed by `y0`'s;

and a `check()` that runs both once with step counting and returns NumPy results.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

PEERS = ("torchdiffeq", "torchode")


def import_peers() -> tuple[dict[str, Any], dict[str, str]]:
    """Lazily import torch and the peers. Returns ({name: module}, {name: error message})."""
    mods, errors = {}, {}
    try:
        import torch  # noqa: F401  (the peers need it; fail early with its error)
    except Exception as e:  # pragma: no cover - depends on the environment
        return {}, {p: f"torch: {type(e).__name__}: {e}" for p in PEERS}
    for name in PEERS:
        try:
            mods[name] = __import__(name)
        except Exception as e:  # pragma: no cover - depends on the environment
            errors[name] = f"{type(e).__name__}: {e}"
    return mods, errors


def versions() -> dict[str, str]:
    import torch

    out = dict(torch=torch.__version__, torch_num_threads=torch.get_num_threads())
    for name in PEERS:
        try:
            out[name] = getattr(__import__(name), "__version__", "?")
        except Exception:  # pragma: no cover
            pass
    return out


# ---------------------------------------------------------------------------- vector fields
def _modules():
    import torch
    from torch import nn

    class TorchMLP(nn.Module):
        """The equinox MLP `eqx.nn.MLP(d, d, width, depth, activation=tanh)`: Linear layers
        with tanh between them and none after the last; acts on the last axis, so a state of
        shape (64, 2) is the vmapped case."""

        def __init__(self, layers):
            super().__init__()
            self.layers = nn.ModuleList()
            for w, b in layers:
                lin = nn.Linear(w.shape[1], w.shape[0], dtype=torch.float64)
                with torch.no_grad():
                    lin.weight.copy_(torch.as_tensor(w, dtype=torch.float64))
                    lin.bias.copy_(torch.as_tensor(b, dtype=torch.float64))
                self.layers.append(lin)

        def forward(self, t, y):
            for lin in self.layers[:-1]:
                y = torch.tanh(lin(y))
            return self.layers[-1](y)

    class TorchLinear(nn.Module):
        """f(y) = -rate * y with a trainable scalar rate."""

        def __init__(self, rate):
            super().__init__()
            self.rate = nn.Parameter(torch.as_tensor(rate, dtype=torch.float64))

        def forward(self, t, y):
            return -self.rate * y

    class Flat(nn.Module):
        """torchode works on (batch, features): the whole state is one sample of
        prod(shape) features (one ODE, one error norm, like pdesolve/diffrax); the inner field
        sees the state's own shape. Also works per sample under torch.func.vmap (torchode's
        BacksolveAdjoint), where the leading batch axis is gone."""

        def __init__(self, inner, shape):
            super().__init__()
            self.inner = inner
            self.shape = tuple(shape)

        def forward(self, t, y):
            return self.inner(t, y.reshape(y.shape[:-1] + self.shape)).reshape(y.shape)

    class Counting(nn.Module):
        """Wraps a field and counts torchdiffeq's step callbacks (forward and adjoint); only
        used for the untimed check calls."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.reset()

        def reset(self):
            self.n = dict(step=0, accept=0, reject=0, step_adjoint=0, accept_adjoint=0, reject_adjoint=0)

        def forward(self, t, y):
            return self.inner(t, y)

        def callback_step(self, t0, y0, dt):
            self.n["step"] += 1

        def callback_accept_step(self, t0, y0, dt):
            self.n["accept"] += 1

        def callback_reject_step(self, t0, y0, dt):
            self.n["reject"] += 1

        def callback_step_adjoint(self, t0, y0, dt):
            self.n["step_adjoint"] += 1

        def callback_accept_step_adjoint(self, t0, y0, dt):
            self.n["accept_adjoint"] += 1

        def callback_reject_step_adjoint(self, t0, y0, dt):
            self.n["reject_adjoint"] += 1

    return TorchMLP, TorchLinear, Flat, Counting


def build_field(spec: dict):
    """spec: {"kind": "mlp", "layers": [(W, b), ...]} or {"kind": "linear", "rate": float}."""
    TorchMLP, TorchLinear, _, _ = _modules()
    if spec["kind"] == "mlp":
        return TorchMLP(spec["layers"])
    return TorchLinear(spec["rate"])


def eval_field(module, y) -> Any:
    """f(0, y) as NumPy, for the 1e-12 agreement check against the equinox field."""
    import numpy as np
    import torch

    with torch.no_grad():
        return module(torch.zeros((), dtype=torch.float64), torch.tensor(np.array(y), dtype=torch.float64)).numpy()


# ---------------------------------------------------------------------------- torchode RK4
def torchode_rk4_class():
    """Classical RK4 for torchode from its own `ExplicitRungeKutta` machinery (torchode 1.0.1
    ships Euler, Heun, Dopri5 and Tsit5 only). Zero error weights (FixedStepController ignores
    them); the final state is read through a linear interpolant of the last step, which at the
    step's end point returns y1."""
    import torchode as to
    from torchode.interpolation import LinearInterpolation
    from torchode.single_step_methods.runge_kutta import ButcherTableau, ExplicitRungeKutta

    class RK4(ExplicitRungeKutta):
        TABLEAU = ButcherTableau.from_lists(
            c=[0.0, 0.5, 0.5, 1.0],
            a=[[], [0.5], [0.0, 0.5], [0.0, 0.0, 1.0]],
            b=[1 / 6, 1 / 3, 1 / 3, 1 / 6],
            b_err=[0.0, 0.0, 0.0, 0.0],
        )

        def __init__(self, term: to.ODETerm | None = None):
            super().__init__(term, RK4.TABLEAU)

        def convergence_order(self):
            return 4

        def build_interpolation(self, data):
            return LinearInterpolation(data.t0, data.dt, data.y0, data.y1)

    return RK4


# ---------------------------------------------------------------------------- configurations
@dataclasses.dataclass
class PeerConfig:
    name: str  # e.g. "torchdiffeq", "torchdiffeq-adjoint", "torchode", "torchode-backsolve"
    library: str
    gradient_method: str  # "backprop" or "continuous adjoint"
    config: str  # the exact call, for the report
    forward: Callable[[], Any] | None  # None: same forward as another config (adjoint variants)
    gradient: Callable[[], Any]
    check: Callable[[], dict]


def make_configs(spec: dict, y0, setting: str, *, dt: float, t0: float, t1: float, rtol: float, atol: float,
                 max_steps: int, peers: dict[str, Any]) -> list[PeerConfig]:
    """Peer configurations for one case and one step setting.

    setting "rk4-const": 1000 constant steps of dt, classical RK4 where the peer has it
    (torchode, built from its ERK class) and torchdiffeq's `rk4` (the 3/8 rule; see the
    module docstring of bench_ode.py). setting "dopri5-adaptive": Dopri5, rtol/atol, automatic
    initial step, integral control.
    """
    import numpy as np
    import torch

    _, _, Flat, Counting = _modules()
    shape = tuple(np.shape(y0))
    y0_t = torch.as_tensor(np.asarray(y0), dtype=torch.float64)
    ts = torch.tensor([t0, t1], dtype=torch.float64)
    out = []

    def grad_of(solve, module):
        params = list(module.parameters())

        def gradient():
            y0r = y0_t.detach().clone().requires_grad_(True)
            y1 = solve(y0r)
            return torch.autograd.grad((y1**2).sum(), params + [y0r])

        return gradient

    def fwd_of(solve):
        def forward():
            with torch.no_grad():
                return solve(y0_t)

        return forward

    np_ = lambda xs: [x.detach().numpy().copy() for x in xs]  # noqa: E731

    if "torchdiffeq" in peers:
        tdq = peers["torchdiffeq"]
        if setting == "rk4-const":
            kw = dict(method="rk4", options=dict(step_size=dt))
            cfg = f"odeint(f, y0, t=[{t0:g}, {t1:g}], method='rk4', options=dict(step_size={dt:g})) (3/8 rule)"
        else:
            kw = dict(method="dopri5", rtol=rtol, atol=atol)
            cfg = f"odeint(f, y0, t=[{t0:g}, {t1:g}], method='dopri5', rtol={rtol:g}, atol={atol:g})"
        for adjoint in (False, True):
            module = build_field(spec)
            counted = Counting(module)
            integ = tdq.odeint_adjoint if adjoint else tdq.odeint

            def solve(y, integ=integ, func=module):
                return integ(func, y, ts, **kw)[-1]

            def solve_counted(y, integ=integ, func=counted):
                return integ(func, y, ts, **kw)[-1]

            def check(counted=counted, solve_counted=solve_counted, module=module):
                counted.reset()
                with torch.no_grad():
                    y1 = solve_counted(y0_t)
                n_fwd = dict(counted.n)
                counted.reset()
                g = grad_of(solve_counted, module)()
                n_grad = dict(counted.n)
                return dict(
                    y1=y1.numpy().copy(), grads=np_(g),
                    steps=n_fwd["step"], accepted=n_fwd["accept"] if setting != "rk4-const" else n_fwd["step"],
                    backward_steps=n_grad["step_adjoint"] if adjoint else None,
                )

            name = "torchdiffeq-adjoint" if adjoint else "torchdiffeq"
            out.append(PeerConfig(
                name=name, library="torchdiffeq", gradient_method="continuous adjoint" if adjoint else "backprop",
                config=(cfg.replace("odeint(", "odeint_adjoint(") + " (adjoint: same method/options/rtol/atol)")
                if adjoint else cfg,
                forward=None if adjoint else fwd_of(solve), gradient=grad_of(solve, module), check=check,
            ))

    if "torchode" in peers:
        to = peers["torchode"]
        for backsolve in (False, True):
            module = build_field(spec)
            term = to.ODETerm(Flat(module, shape))
            if setting == "rk4-const":
                step = torchode_rk4_class()(term=term)
                ctrl = to.FixedStepController()
                dt0 = torch.full((1,), dt, dtype=torch.float64)
                cfg = (f"AutoDiffAdjoint(RK4 (classical, torchode ERK subclass), FixedStepController(), "
                       f"max_steps={max_steps}).solve(IVP(y0 (1, n), t_start={t0:g}, t_end={t1:g}), dt0={dt:g})")
            else:
                step = to.Dopri5(term=term)
                ctrl = to.IntegralController(atol=atol, rtol=rtol, term=term)
                dt0 = None
                cfg = (f"AutoDiffAdjoint(Dopri5(), IntegralController(atol={atol:g}, rtol={rtol:g}), "
                       f"max_steps={max_steps}).solve(IVP(y0 (1, n), t_start={t0:g}, t_end={t1:g}), dt0=None)")
            if backsolve:
                solver = to.BacksolveAdjoint(term, step, ctrl)
                cfg = cfg.replace("AutoDiffAdjoint(", "BacksolveAdjoint(term, ").replace(f", max_steps={max_steps}", "")
            else:
                solver = to.AutoDiffAdjoint(step, ctrl, max_steps=max_steps)
            t_start = torch.full((1,), t0, dtype=torch.float64)
            t_end = torch.full((1,), t1, dtype=torch.float64)

            def solve_sol(y, solver=solver, dt0=dt0):
                return solver.solve(to.InitialValueProblem(y0=y.reshape(1, -1), t_start=t_start, t_end=t_end),
                                    dt0=dt0)

            def solve(y, solve_sol=solve_sol):
                return solve_sol(y).ys[0, -1].reshape(shape)

            def check(solve_sol=solve_sol, module=module, backsolve=backsolve):
                with torch.no_grad():
                    sol = solve_sol(y0_t)
                y1 = sol.ys[0, -1].reshape(shape)
                status = int(sol.status[0])
                params = list(module.parameters())
                y0r = y0_t.detach().clone().requires_grad_(True)
                solg = solve_sol(y0r)
                g = torch.autograd.grad((solg.ys[0, -1] ** 2).sum(), params + [y0r])
                back = None
                if backsolve and solg.stats.get("backsolve"):
                    back = int(sum(int(s["n_steps"][0]) for s in solg.stats["backsolve"]))
                return dict(y1=y1.numpy().copy(), grads=np_(g), steps=int(sol.stats["n_steps"][0]),
                            accepted=int(sol.stats["n_accepted"][0]), backward_steps=back, status=status)

            out.append(PeerConfig(
                name="torchode-backsolve" if backsolve else "torchode", library="torchode",
                gradient_method="continuous adjoint" if backsolve else "backprop", config=cfg,
                forward=None if backsolve else fwd_of(solve), gradient=grad_of(solve, module), check=check,
            ))
    return out
