"""Physics-informed neural networks for `PDEProblem`: `DTPINN` (RBF-FD) and `PINN` (autodiff).

Both solvers train one network ``u_w(x)`` (steady problems) or ``u_w(x, t)`` (evolution
problems) to make the user's equation and boundary condition hold at a fixed node set, by
minimising the mean squared residuals with L-BFGS (optimistix). They differ in how the spatial
derivatives inside the loss are computed:

* `DTPINN` (discretely trained PINN, Sharma & Shankar, NeurIPS 2022): every linear spatial
  operator in the equation (Laplacian, partials, normal derivative) is replaced by a sparse
  RBF-FD differentiation matrix of design order ``p`` (polyharmonic splines + polynomials,
  stencils of ``2 C(p + theta - 1 + d, d) + 1`` nearest nodes), applied to the network's values
  at the nodes with one sparse product per operator. Ghost nodes outside the boundary make
  boundary stencils less one-sided and let the PDE be enforced on the boundary too. The loss is

      mean_{interior+boundary} |L u - f|^2 + mean_{boundary} |B u - g|^2,

  written through the user's pointwise equation (nonlinear terms act pointwise on the
  discrete values). Evolution problems use autodiff in time (one forward-mode JVP) and RBF-FD
  in space over ``time_slices`` time levels, plus an initial-condition term.
* `PINN` (vanilla): the same network and loss with every derivative by automatic
  differentiation (forward-over-forward Laplacian of the network).

Cost per loss evaluation with N nodes, P network parameters and n-point stencils: DTPINN one
forward pass over N_i + 2 N_b nodes (O(N P)) plus O(N n) per operator for the sparse products;
the reverse pass the same again. PINN pays about (1 + 2d) forward-mode passes for a Laplacian
per point (second-order JVPs along each coordinate), i.e. several times more per iteration, and
more again in float64.

Reference: R. Sharma, V. Shankar, *Accelerated training of physics-informed neural networks
(PINNs) using meshless discretizations*, NeurIPS 2022.

Layout: `_solvers.py` (the options and their checks), `_losses.py` (the RBF-FD and autodiff
losses), `_setup.py` (node set, network, test set, evaluator), `_training.py` (the minimiser
as a long run of `pdesolve._driver`), `_solving.py` (the two `pds.solve` implementations).
"""

from ._solvers import DTPINN as DTPINN
from ._solvers import PINN as PINN
from ._solvers import AbstractPINNSolver as AbstractPINNSolver
from . import _solving as _solving  # registers the solves

__all__ = ["DTPINN", "PINN"]
