"""pdesolve: solvers for neural differential equations on JAX.

    import pdesolve as pds
    sol = pds.solve(problem, pds.Dopri5(), controller=pds.PIDController(rtol=1e-6, atol=1e-8))

See docs/getting-started.md.
"""

import os as _os

# In a source tree (a clone: `pdesolve/`, `solvers/`, `problems/` side by side at the top
# level) the subpackages `pdesolve.solvers` and `pdesolve.problems` live next to this
# package, not inside it; the installed wheel maps them inside (pyproject's package-dir).
# Extending the package path to the parent directory makes `import pdesolve` work from a
# clone's root (a script or notebook saved there) exactly as from an install.
_here = _os.path.dirname(_os.path.abspath(__file__))
if not _os.path.isdir(_os.path.join(_here, "solvers")) and _os.path.isfile(
    _os.path.join(_here, _os.pardir, "solvers", "__init__.py")
):
    __path__.append(_os.path.normpath(_os.path.join(_here, _os.pardir)))  # noqa: F821
del _here

from ._adjoint import (
    AbstractAdjoint as AbstractAdjoint,
    DirectAdjoint as DirectAdjoint,
    DiscreteAdjoint as DiscreteAdjoint,
    ForwardMode as ForwardMode,
    RecursiveCheckpointAdjoint as RecursiveCheckpointAdjoint,
    ReversibleAdjoint as ReversibleAdjoint,
)
from ._boundary import (
    AbstractBoundaryCondition as AbstractBoundaryCondition,
    Dirichlet as Dirichlet,
    MixedBC as MixedBC,
    Neumann as Neumann,
    Robin as Robin,
)
from ._controllers import (
    AbstractStepController as AbstractStepController,
    ConstantStepSize as ConstantStepSize,
    PIDController as PIDController,
    StepTo as StepTo,
    rms_norm as rms_norm,
)
from ._field import AbstractField as AbstractField, Field as Field
from ._rbf_fd import (
    assemble as rbf_fd_assemble,  # noqa: F401 (public under this name)
    canonical_operator as canonical_operator,
    ghost_nodes as ghost_nodes,
    polynomial_degree as polynomial_degree,
    rbf_fd_matrix as rbf_fd_matrix,
    stencil_size as stencil_size,
)
from ._sparse import EllMatrix as EllMatrix
from ._checkpoint import Checkpoint as Checkpoint, CheckpointError as CheckpointError
from ._nystrom import NystromPreconditioner as NystromPreconditioner, ResidualCG as ResidualCG, nystrom_cg as nystrom_cg
from ._sinusoidal_mlp import AbstractLinearHead as AbstractLinearHead
from ._sinusoidal_mlp import SinusoidalMLP as SinusoidalMLP, sinusoidal_embedding as sinusoidal_embedding
from ._imex_tableau import (
    ARK3_2_4L2SA as ARK3_2_4L2SA,
    ARK4_3_6L2SA as ARK4_3_6L2SA,
    ARK5_4_8L2SA as ARK5_4_8L2SA,
    ARS222 as ARS222,
    IMEX_L2 as IMEX_L2,
    IMEX_TABLEAUX as IMEX_TABLEAUX,
    IMEXTableau as IMEXTableau,
)
from ._geometry import (
    AbstractDomain as AbstractDomain,
    Ball as Ball,
    Box as Box,
    PointCloud as PointCloud,
)
from ._problems import (
    AbstractProblem as AbstractProblem,
    NeuralODEProblem as NeuralODEProblem,
    PDEProblem as PDEProblem,
    remake as remake,
)
from ._ensemble import EnsembleProblem as EnsembleProblem, ensemble_summary as ensemble_summary
from ._events import Event as Event
from ._results import RESULTS as RESULTS
from ._results import result_code as result_code, result_message as result_message, result_name as result_name
from ._saveat import SaveAt as SaveAt
from ._solution import FieldSolution as FieldSolution
from ._solution import ODESolution as ODESolution
from ._solution import Solution as Solution
from ._plot import plot as plot
from ._solve import AbstractSolver as AbstractSolver, register as register, solve as solve
from ._tableau import ButcherTableau as ButcherTableau
from ._train import train as train
from ._sharding import shard_leading as shard_leading, replicate as replicate

# Solvers register themselves with `solve` on import; keep this import last.
from .solvers import (  # noqa: E402
    ALF as ALF,
    AbstractExplicitRK as AbstractExplicitRK,
    AbstractReversibleSolver as AbstractReversibleSolver,
    Bosh3 as Bosh3,
    DTPINN as DTPINN,
    Dopri5 as Dopri5,
    Euler as Euler,
    ExplicitRK as ExplicitRK,
    Heun as Heun,
    IMEXRK as IMEXRK,
    MethodOfLines as MethodOfLines,
    NeuralIVP as NeuralIVP,
    PINN as PINN,
    RestartPolicy as RestartPolicy,
    Midpoint as Midpoint,
    Ralston as Ralston,
    ReversibleHeun as ReversibleHeun,
    ReversibleRK as ReversibleRK,
    RK4 as RK4,
    Tsit5 as Tsit5,
)

__version__ = "0.1.0"
