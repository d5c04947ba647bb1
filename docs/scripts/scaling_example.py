"""Multi-device pdesolve: the same solves on one device and split over all devices, compared.

Run from the repository root:

    python docs/scripts/scaling_example.py

On a CPU-only machine the script splits the host into two XLA devices (the flag must be set
before JAX starts), so the split paths run anywhere; with accelerators JAX uses those and the
flag is ignored. With a single device the mesh has one device and everything still runs.

Multi-host (each process runs this same script, one process per host):

    PDESOLVE_MULTIHOST=1 python docs/scripts/scaling_example.py

calls `jax.distributed.initialize()` first (it reads the coordinator address, the number of
processes and this process's id from the cluster environment — SLURM, Open MPI, Cloud TPU —
or from its arguments), after which `jax.devices()` lists the devices of all hosts and the
mesh below spans them.
"""

import os

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()

import jax

if os.environ.get("PDESOLVE_MULTIHOST"):
    jax.distributed.initialize()
jax.config.update("jax_enable_x64", True)

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import optax

import pdesolve as pds
from pdesolve import problems as P


def rel_diff(a, b):
    """Largest difference between the arrays of two pytrees, relative to the largest entry."""
    la = np.concatenate([np.ravel(x) for x in jax.tree.leaves(eqx.filter(a, eqx.is_inexact_array))])
    lb = np.concatenate([np.ravel(x) for x in jax.tree.leaves(eqx.filter(b, eqx.is_inexact_array))])
    return float(np.max(np.abs(la - lb)) / np.max(np.abs(la)))


def main():
    n = jax.device_count()
    # Auto axes: the partitioner places the reductions (jax.make_mesh defaults to Explicit).
    mesh = jax.make_mesh((n,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    print(f"{n} device(s): {jax.devices()}")

    # 1. DT-PINN: collocation rows, nodes and RBF-FD matrix rows split; parameters replicated.
    prob = P.poisson_disk()
    solver = pds.DTPINN(width=20, depth=2, n_nodes=300)
    one = pds.solve(prob, solver, max_steps=10)
    split = pds.solve(prob, solver, max_steps=10, mesh=mesh)
    print(f"DTPINN: loss {one.stats['final_loss']:.6e} (1 device) vs {split.stats['final_loss']:.6e} "
          f"({n} devices); parameters differ by {rel_diff(one.ys, split.ys):.1e} (relative)")

    # 2. NeuralIVP: Monte-Carlo samples split (n_samples a multiple of the device count).
    adv = pds.PDEProblem(
        rhs=lambda u, x, t, args: -0.5 * u.partial(0),
        u0=lambda x: jnp.exp(-jnp.sum((x + 0.3) ** 2) / 0.08),
        tspan=(0.0, 0.1), domain=pds.Box([-1.0], [1.0]), bc=pds.Dirichlet(0.0),
    )
    ivp = pds.NeuralIVP(width=16, depth=2, n_samples=512, n_eval_samples=256, rank=20, fit_steps=100,
                        head_tuning=False, mu=1e-4, cg_rtol=1e-12, restart=None)
    a = pds.solve(adv, ivp, dt0=0.05)
    b = pds.solve(adv, ivp, dt0=0.05, mesh=mesh)
    print(f"NeuralIVP: θ(T) differs by {rel_diff(a.ys, b.ys):.1e} (relative)")

    # 3. Neural-ODE training: a batch of trajectories split, the model replicated.
    class Field(eqx.Module):
        mlp: eqx.nn.MLP

        def __call__(self, t, y, args):
            return self.mlp(y) - 0.3 * y

    model = Field(eqx.nn.MLP(2, 2, 16, 1, activation=jnp.tanh, dtype=jnp.float64, key=jax.random.PRNGKey(0)))
    y0s = jax.random.normal(jax.random.PRNGKey(1), (4 * n, 2))  # the batch: a multiple of n

    def loss(field, y0s):
        def one_trajectory(y0):
            return pds.solve(pds.NeuralODEProblem(field, y0, (0.0, 1.0)), pds.RK4(), dt0=0.1).ys[-1]

        return jnp.mean(jnp.sum(jax.vmap(one_trajectory)(y0s) ** 2, axis=-1))

    m1, s1 = pds.train(loss, model, optax.adam(1e-2), steps=5, data=y0s)
    m2, s2 = pds.train(loss, model, optax.adam(1e-2), steps=5, data=y0s, mesh=mesh)
    print(f"train: final loss {s1['loss_history'][-1]:.6e} vs {s2['loss_history'][-1]:.6e}; "
          f"parameters differ by {rel_diff(m1, m2):.1e} (relative)")
    return max(rel_diff(one.ys, split.ys), rel_diff(a.ys, b.ys), rel_diff(m1, m2))


if __name__ == "__main__":
    worst = main()
    assert worst < 1e-9, worst
