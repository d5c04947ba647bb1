"""pdesolve's solvers, one module per family (re-exported from `pdesolve`)."""

from .explicit_rk import (
    AbstractExplicitRK as AbstractExplicitRK,
    Bosh3 as Bosh3,
    Dopri5 as Dopri5,
    Euler as Euler,
    ExplicitRK as ExplicitRK,
    Heun as Heun,
    Midpoint as Midpoint,
    Ralston as Ralston,
    RK4 as RK4,
    Tsit5 as Tsit5,
)
from .imex import IMEXRK as IMEXRK
from .method_of_lines import MethodOfLines as MethodOfLines
from .neural_ivp import NeuralIVP as NeuralIVP, RestartPolicy as RestartPolicy
from .pinn import DTPINN as DTPINN, PINN as PINN
from .reversible import (
    ALF as ALF,
    AbstractReversibleSolver as AbstractReversibleSolver,
    ReversibleHeun as ReversibleHeun,
    ReversibleRK as ReversibleRK,
)
