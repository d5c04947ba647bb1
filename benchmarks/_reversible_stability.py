"""The stability section of bench_reversible: ReversibleRK's parasitic mode, with drift control.

Two problems where the mode matters:

* `decaying`: `y' = -(y - cos t)`, `y(0) = 1`, `t` in [0, 50] (exact solution
  `(cos t + sin t)/2 + e^{-t}/2`); a decaying mode `mu = -1`, so `lambda = 0.999` needs
  `h < 1 - lambda = 0.001` to keep `Y - Z` from growing.
* `lotka_volterra`: DETEST B1 on [0, 20] (`pdesolve.problems.lotka_volterra`), reference
  scipy DOP853 at rtol 1e-12; contracting phases with `|mu|` up to ~8.

For each: plain `Tsit5` and `ReversibleRK(Tsit5(), lambda)` for lambda in (0.999, 0.99,
0.9), `PIDController(rtol=1e-6, atol=1e-6)`: error at `t1`, accepted / rejected steps,
forward time and the gradient of `sum(y(t1)^2)` with respect to the vector field's
parameters (Tsit5: recursive checkpointing; ReversibleRK: its reversible adjoint, and its
relative difference from autodiff (DirectAdjoint) of the same forward steps, i.e. the error
the reconstruction puts into the gradient, shown with the reconstruction check switched off;
with the check on (the default) every gradient here whose difference exceeds ~1e-8 raises).
Before the drift control the same ReversibleRK(Tsit5()) solve of `decaying` returned
-9.5e14 labelled successful in 173 steps.
"""

from __future__ import annotations


def run_stability(repeats: int, quick: bool) -> tuple[list[dict], str]:
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    from _common import compile_jit, format_table, time_interleaved

    import pdesolve as pds
    from pdesolve.problems import lotka_volterra, reference_solution

    rtol = atol = 1e-6
    couplings = (0.99, 0.9) if quick else (0.999, 0.99, 0.9)

    def decaying(t, y, mu):
        return -mu * (y - jnp.cos(t))

    problems = {
        "decaying": (pds.NeuralODEProblem(decaying, jnp.array([1.0]), (0.0, 50.0), jnp.array(1.0)),
                     np.array([(np.cos(50.0) + np.sin(50.0)) / 2 + np.exp(-50.0) / 2])),
    }
    lv = lotka_volterra()
    problems["lotka_volterra"] = (lv, reference_solution(lv, np.array([lv.tspan[1]]))[-1])

    rows = []
    for pname, (prob, ref) in problems.items():
        configs = [("Tsit5", pds.Tsit5(), pds.RecursiveCheckpointAdjoint())]
        for lam in couplings:
            configs.append((f"ReversibleRK λ={lam}", pds.ReversibleRK(pds.Tsit5(), lam),
                            pds.ReversibleAdjoint(reconstruction_tol=float("inf"))))
        fns, args, meta = {}, {}, {}
        for label, solver, adjoint in configs:
            def forward(args_, solver=solver):
                return pds.solve(pds.remake(prob, args=args_), solver,
                                 controller=pds.PIDController(rtol=rtol, atol=atol), max_steps=200_000, throw=False)

            def grad(args_, solver=solver, adjoint=adjoint):
                def loss(a):
                    sol = pds.solve(pds.remake(prob, args=a), solver, controller=pds.PIDController(rtol=rtol, atol=atol),
                                    max_steps=200_000, adjoint=adjoint, throw=False)
                    return jnp.sum(sol.ys[-1] ** 2)
                return jax.grad(loss)(args_)

            fwd_c, fwd_compile = compile_jit(eqx.filter_jit(forward), prob.args)
            grad_c, grad_compile = compile_jit(eqx.filter_jit(grad), prob.args)
            fns[f"{label}/fwd"], args[f"{label}/fwd"] = fwd_c, (prob.args,)
            fns[f"{label}/grad"], args[f"{label}/grad"] = grad_c, (prob.args,)
            sol = fwd_c(prob.args)
            g = grad_c(prob.args)
            meta[label] = dict(sol=sol, grad=g, compile_s=fwd_compile + grad_compile, solver=solver)
        # Autodiff of the same reversible forward steps: the exact discrete gradient.
        for label, solver, _ in configs[1:]:
            def grad_ad(args_, solver=solver):
                def loss(a):
                    sol = pds.solve(pds.remake(prob, args=a), solver, controller=pds.PIDController(rtol=rtol, atol=atol),
                                    max_steps=200_000, adjoint=pds.DirectAdjoint(), throw=False)
                    return jnp.sum(sol.ys[-1] ** 2)
                return jax.grad(loss)(args_)
            try:
                g_ad = eqx.filter_jit(grad_ad)(prob.args)
                ga, gb = (np.concatenate([np.ravel(x) for x in jax.tree.leaves(t)]) for t in (meta[label]["grad"], g_ad))
                meta[label]["recon_rel"] = float(np.max(np.abs(ga - gb)) / max(np.max(np.abs(gb)), 1e-300))
            except Exception as e:  # e.g. memory of DirectAdjoint at 200k steps
                meta[label]["recon_rel"] = None
                meta[label]["recon_note"] = type(e).__name__
        timing = time_interleaved(fns, args, repeats=repeats, min_total_s=0.2)
        base_fwd = timing["Tsit5/fwd"]["median_s"]
        base_grad = timing["Tsit5/grad"]["median_s"]
        for label, solver, _ in configs:
            m = meta[label]
            sol = m["sol"]
            y1 = np.ravel(np.asarray(sol.ys[-1]))
            err = float(np.linalg.norm(y1 - ref) / np.linalg.norm(ref))
            rows.append(dict(
                problem=pname, solver=label, result=pds.result_name(sol.result),
                rel_error=err, accepted=int(sol.stats["num_accepted_steps"]),
                rejected=int(sol.stats["num_rejected_steps"]),
                fwd_ms=1e3 * timing[f"{label}/fwd"]["median_s"], grad_ms=1e3 * timing[f"{label}/grad"]["median_s"],
                fwd_ratio=timing[f"{label}/fwd"]["median_s"] / base_fwd,
                grad_ratio=timing[f"{label}/grad"]["median_s"] / base_grad,
                grad_vs_autodiff_rel=m.get("recon_rel"), compile_s=m["compile_s"],
            ))
    table = format_table(
        ["problem", "solver", "result", "rel. error", "acc", "rej", "fwd ms", "fwd /Tsit5", "grad ms",
         "grad /Tsit5", "grad vs autodiff"],
        [[r["problem"], r["solver"], r["result"][:12], f"{r['rel_error']:.2e}", r["accepted"], r["rejected"],
          f"{r['fwd_ms']:.3g}", f"{r['fwd_ratio']:.3g}", f"{r['grad_ms']:.3g}", f"{r['grad_ratio']:.3g}",
          "" if r["grad_vs_autodiff_rel"] is None else f"{r['grad_vs_autodiff_rel']:.1e}"] for r in rows],
    )
    return rows, table
