"""Butcher tableaux of the explicit Runge–Kutta methods (data only)."""

import equinox as eqx
import numpy as np

from ._dense import _dopri5_weights, _tsit5_weights


class ButcherTableau(eqx.Module):
    """An explicit Runge–Kutta method as data.

    The method with `s` stages computes, for a step of size `h` from `(t, y)`,

        k_i = f(t + c_i h, y + h Σ_{j<i} a_ij k_j),    y_next = y + h Σ_i b_i k_i,

    and, where an embedded pair exists, the error estimate `h Σ_i b_err_i k_i` with
    `b_err = b - b_hat` (the difference from the embedded, lower-order weights).

    **Fields:**

    - `c`: nodes, length `s`, `c[0] == 0`.
    - `a`: strictly lower triangle as a tuple of rows; row `i-1` holds `a_i1..a_i,i`.
    - `b`: weights, length `s`.
    - `b_error`: `b - b_hat` or `None` when the method has no embedded pair.
    - `order`: classical order `p` of `y_next`.
    - `embedded_order`: order of the embedded solution (`None` if absent).
    - `fsal`: first-same-as-last: the last stage is evaluated at `(t + h, y_next)` and is
      reused as the next step's first stage (one evaluation saved per accepted step).
    - `dense`: the method's continuous extension, if its paper gives one: `dense[i][m]` is
      the coefficient of `θ^(m+1)` in `b_i(θ)`, so `y(t + θh) ≈ y + h Σ_i b_i(θ) k_i`
      (`b_i(1) = b_i`); `None` for cubic Hermite dense output (`pdesolve._dense`).

    Validated: shapes, `Σ_j a_ij = c_i`, `Σ b = 1`, `Σ b_error = 0`, FSAL consistency.
    All coefficients are static Python floats, so zero coefficients cost nothing.
    """

    name: str = eqx.field(static=True)
    c: tuple[float, ...] = eqx.field(static=True)
    a: tuple[tuple[float, ...], ...] = eqx.field(static=True)
    b: tuple[float, ...] = eqx.field(static=True)
    b_error: tuple[float, ...] | None = eqx.field(static=True)
    order: int = eqx.field(static=True)
    embedded_order: int | None = eqx.field(static=True)
    fsal: bool = eqx.field(static=True)
    dense: tuple[tuple[float, ...], ...] | None = eqx.field(static=True)

    def __init__(self, name, c, a, b, order, b_hat=None, b_error=None, embedded_order=None, fsal=False,
                 dense=None):
        self.name = str(name)
        self.c = tuple(float(x) for x in c)
        self.a = tuple(tuple(float(x) for x in row) for row in a)
        self.b = tuple(float(x) for x in b)
        if b_hat is not None and b_error is not None:
            raise ValueError("Pass either `b_hat` or `b_error`, not both.")
        if b_hat is not None:
            b_error = [bi - bh for bi, bh in zip(self.b, b_hat)]
        self.b_error = None if b_error is None else tuple(float(x) for x in b_error)
        self.order = int(order)
        self.embedded_order = None if embedded_order is None else int(embedded_order)
        self.fsal = bool(fsal)
        self.dense = None if dense is None else tuple(tuple(float(x) for x in row) for row in dense)

    def __check_init__(self):
        s = len(self.b)
        if len(self.c) != s or len(self.a) != s - 1:
            raise ValueError(f"{self.name}: need len(c) == len(b) == len(a) + 1.")
        for i, row in enumerate(self.a, start=1):
            if len(row) != i:
                raise ValueError(f"{self.name}: row {i} of `a` must have {i} entries.")
            if abs(sum(row) - self.c[i]) > 1e-12:
                raise ValueError(f"{self.name}: row {i} of `a` does not sum to c[{i}].")
        if self.c[0] != 0.0:
            raise ValueError(f"{self.name}: explicit methods need c[0] == 0.")
        if abs(sum(self.b) - 1.0) > 1e-12:
            raise ValueError(f"{self.name}: weights `b` must sum to 1.")
        if self.b_error is not None:
            if len(self.b_error) != s or abs(sum(self.b_error)) > 1e-12:
                raise ValueError(f"{self.name}: `b_error` must have length s and sum to 0.")
            if self.embedded_order is None:
                raise ValueError(f"{self.name}: give `embedded_order` with an embedded pair.")
        if self.fsal and (self.c[-1] != 1.0 or any(abs(x - y) > 1e-15 for x, y in zip(self.a[-1], self.b))):
            raise ValueError(f"{self.name}: FSAL needs c[-1] == 1 and a[-1] == b[:-1].")
        if self.dense is not None:
            if len(self.dense) != s or len({len(row) for row in self.dense}) != 1:
                raise ValueError(f"{self.name}: `dense` needs one row of equal length per stage.")
            if any(abs(sum(row) - bi) > 1e-12 for row, bi in zip(self.dense, self.b)):
                raise ValueError(f"{self.name}: `dense` rows must sum to `b` (b_i(1) = b_i).")

    @property
    def stages(self) -> int:
        return len(self.b)

    @property
    def error_order(self) -> int | None:
        """Exponent base for step-size control: `min(order, embedded_order) + 1`."""
        if self.embedded_order is None:
            return None
        return min(self.order, self.embedded_order) + 1

    def as_arrays(self):
        """`(c, A, b, b_error)` as numpy arrays with `A` the full `s x s` matrix."""
        s = self.stages
        A = np.zeros((s, s))
        for i, row in enumerate(self.a, start=1):
            A[i, :i] = row
        err = None if self.b_error is None else np.array(self.b_error)
        return np.array(self.c), A, np.array(self.b), err


EULER = ButcherTableau("Euler", c=[0.0], a=[], b=[1.0], order=1)

HEUN = ButcherTableau(
    "Heun", c=[0.0, 1.0], a=[[1.0]], b=[0.5, 0.5], b_hat=[1.0, 0.0], order=2, embedded_order=1
)

MIDPOINT = ButcherTableau(
    "Midpoint", c=[0.0, 0.5], a=[[0.5]], b=[0.0, 1.0], b_hat=[1.0, 0.0], order=2, embedded_order=1
)

RALSTON = ButcherTableau(
    "Ralston",
    c=[0.0, 2 / 3],
    a=[[2 / 3]],
    b=[0.25, 0.75],
    b_hat=[1.0, 0.0],
    order=2,
    embedded_order=1,
)

# Bogacki & Shampine (1989), "A 3(2) pair of Runge–Kutta formulas".
BOSH3 = ButcherTableau(
    "Bosh3",
    c=[0.0, 1 / 2, 3 / 4, 1.0],
    a=[[1 / 2], [0.0, 3 / 4], [2 / 9, 1 / 3, 4 / 9]],
    b=[2 / 9, 1 / 3, 4 / 9, 0.0],
    b_hat=[7 / 24, 1 / 4, 1 / 3, 1 / 8],
    order=3,
    embedded_order=2,
    fsal=True,
)

RK4 = ButcherTableau(
    "RK4",
    c=[0.0, 0.5, 0.5, 1.0],
    a=[[0.5], [0.0, 0.5], [0.0, 0.0, 1.0]],
    b=[1 / 6, 1 / 3, 1 / 3, 1 / 6],
    order=4,
)

# Dormand & Prince (1980), "A family of embedded Runge–Kutta formulae".
DOPRI5 = ButcherTableau(
    "Dopri5",
    c=[0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0],
    a=[
        [1 / 5],
        [3 / 40, 9 / 40],
        [44 / 45, -56 / 15, 32 / 9],
        [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
        [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
        [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
    ],
    b=[35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0],
    b_hat=[5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40],
    order=5,
    embedded_order=4,
    fsal=True,
    dense=_dopri5_weights([35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0]),
)

# Tsitouras (2011), "Runge–Kutta pairs of order 5(4) satisfying only the first column
# simplifying assumption", Comput. Math. Appl. 62, 770–775.
_TSIT5_B = [
    0.09646076681806523,
    0.01,
    0.4798896504144996,
    1.379008574103742,
    -3.290069515436081,
    2.324710524099774,
    0.0,
]
TSIT5 = ButcherTableau(
    "Tsit5",
    c=[0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0],
    a=[
        [0.161],
        [-0.008480655492356989, 0.335480655492357],
        [2.897153057105493, -6.359448489975075, 4.3622954328695815],
        [5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525],
        [
            5.86145544294642,
            -12.92096931784711,
            8.159367898576159,
            -0.071584973281401,
            -0.028269050394068383,
        ],
        _TSIT5_B[:6],
    ],
    b=_TSIT5_B,
    b_error=[
        -0.00178001105222577714,
        -0.0008164344596567469,
        0.007880878010261995,
        -0.1447110071732629,
        0.5823571654525552,
        -0.45808210592918697,
        1 / 66,
    ],
    order=5,
    embedded_order=4,
    fsal=True,
    dense=_tsit5_weights(_TSIT5_B),
)
