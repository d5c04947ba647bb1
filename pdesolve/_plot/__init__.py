"""`pds.plot`: pictures of solutions and training histories (matplotlib, optional extra `plot`).

    import pdesolve as pds
    sol = pds.solve(problem, pds.DTPINN(), max_steps=2000)
    fig = pds.plot(sol, path="poisson.png")

What is drawn depends on the solution:

* PDE field solutions (`pds.FieldSolution`: NeuralIVP, DTPINN, PINN, MethodOfLines): the
  learned field at up to four times (saved times; space-time PINNs: times in `tspan`; steady
  problems: one panel), a row of error maps `|u - u_exact|` when the problem has `solution=`,
  and the solver's histories (training loss and test error; CG iterations per linear solve and
  the PDE residual / error over t). 2-D domains are drawn whole (points outside a disk, or
  farther than 1.5 node spacings from a bare point cloud's nodes, masked), higher dimensions as
  the slice through the centre of the bounding box in the first two coordinates, 1-D domains
  as line plots.
* ODE solutions (`pds.ODESolution`): the saved trajectories against t (an image of the state
  against t for more than 10 components), the phase plane for two components, and the step
  sizes for `SaveAt(steps=True)` solutions; the step counters in the title.
* A stats dict (e.g. `sol.stats`): its histories only.

The figure is a plain `matplotlib.figure.Figure` (no pyplot state, so nothing pops up in tests
or command-line runs); `path=` also saves it. matplotlib is imported only when `plot` is called.

Layout of the package:

* `_dispatch`: `plot` itself: argument checks and the choice of figure by the type of `sol`;
* `_fields`: field solutions: time selection, evaluation grids, 2-D maps and 1-D lines;
* `_odes`: ODE solutions: trajectories, phase plane, step sizes;
* `_histories`: history panels from a stats dict (below a field figure, or alone);
* `_common`: the lazy matplotlib import and small helpers shared by the figures.
"""

from ._dispatch import plot

__all__ = ["plot"]
