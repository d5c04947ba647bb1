"""Tableaux of implicit–explicit (additive) Runge–Kutta methods (data only)."""

import math
from fractions import Fraction as F

import equinox as eqx
import numpy as np

_TOL = 1e-12


def _vector(x):
    return tuple(float(v) for v in x)


def _matrix(rows):
    return tuple(tuple(float(v) for v in row) for row in rows)


class IMEXTableau(eqx.Module):
    """An implicit–explicit (additive) Runge–Kutta pair as data.

    For `y' = G(t, y) + L(t, y)`, with `G` non-stiff (treated explicitly) and `L` stiff
    (treated implicitly), a step of size `h` from `(t, y)` with `s` stages computes

        U_i = y + h Σ_{j<i} a_ij G_j + h Σ_{j<=i} ã_ij L_j,
        G_i = G(t + c_i h, U_i),    L_i = L(t + c̃_i h, U_i),
        y_next = y + h Σ_i b_i G_i + h Σ_i b̃_i L_i,

    so each stage needs one solve of `U_i - h ã_ii L(t + c̃_i h, U_i) = rhs_i` (none where
    `ã_ii == 0`). Where an embedded pair `(b̂, b̂̃)` exists the error estimate is

        h Σ_i (b_i - b̂_i) G_i + h Σ_i (b̃_i - b̂̃_i) L_i.

    **Fields:**

    - `name`: a label.
    - `a_explicit`: `A`, the full `s x s` matrix as a tuple of rows; strictly lower triangular.
    - `b_explicit`, `c_explicit`: weights and nodes of the explicit part (length `s`).
    - `a_implicit`: `Ã`, the full `s x s` matrix as a tuple of rows; lower triangular (a zero
      diagonal entry is an explicit stage, e.g. the first stage of an ESDIRK).
    - `b_implicit`, `c_implicit`: weights and nodes of the implicit part (length `s`).
    - `b_explicit_error`: `b - b̂`, or `None` without an embedded pair.
    - `b_implicit_error`: `b̃ - b̂̃`, or `None` without an embedded pair.
    - `order`: order `p` of `y_next` (all coupled order conditions up to `p`).
    - `embedded_order`: order of the embedded solution (`None` without an embedded pair).

    **Arguments of the constructor** are the fields, except that the embedded pair is given
    as the weights themselves (`b_explicit_hat`, `b_implicit_hat`) and that `c_explicit`,
    `c_implicit` default to the row sums of `a_explicit`, `a_implicit`.

    Validated at construction (`ValueError` naming the field): shapes, `A` strictly lower
    and `Ã` lower triangular, row sums equal to `c` (to 1e-12), `Σ b = Σ b̃ = 1`, error
    weights summing to 0 and given for both parts or neither, `embedded_order` given iff an
    embedded pair is. All coefficients are static Python floats, so zero coefficients cost
    nothing when a step is traced.
    """

    name: str = eqx.field(static=True)
    a_explicit: tuple[tuple[float, ...], ...] = eqx.field(static=True)
    b_explicit: tuple[float, ...] = eqx.field(static=True)
    c_explicit: tuple[float, ...] = eqx.field(static=True)
    a_implicit: tuple[tuple[float, ...], ...] = eqx.field(static=True)
    b_implicit: tuple[float, ...] = eqx.field(static=True)
    c_implicit: tuple[float, ...] = eqx.field(static=True)
    b_explicit_error: tuple[float, ...] | None = eqx.field(static=True)
    b_implicit_error: tuple[float, ...] | None = eqx.field(static=True)
    order: int = eqx.field(static=True)
    embedded_order: int | None = eqx.field(static=True)

    def __init__(
        self,
        name,
        *,
        a_explicit,
        b_explicit,
        a_implicit,
        b_implicit,
        order,
        c_explicit=None,
        c_implicit=None,
        b_explicit_hat=None,
        b_implicit_hat=None,
        embedded_order=None,
    ):
        self.name = str(name)
        self.a_explicit = _matrix(a_explicit)
        self.b_explicit = _vector(b_explicit)
        self.a_implicit = _matrix(a_implicit)
        self.b_implicit = _vector(b_implicit)
        # Row sums in exact arithmetic where the entries are Fractions, then rounded once.
        self.c_explicit = _vector(c_explicit) if c_explicit is not None else _vector(sum(r) for r in a_explicit)
        self.c_implicit = _vector(c_implicit) if c_implicit is not None else _vector(sum(r) for r in a_implicit)
        self.b_explicit_error = (
            None if b_explicit_hat is None else _vector(b - bh for b, bh in zip(b_explicit, b_explicit_hat))
        )
        self.b_implicit_error = (
            None if b_implicit_hat is None else _vector(b - bh for b, bh in zip(b_implicit, b_implicit_hat))
        )
        if b_explicit_hat is not None and len(b_explicit_hat) != len(self.b_explicit):
            raise ValueError(f"{self.name}: `b_explicit_hat` must have the length of `b_explicit`.")
        if b_implicit_hat is not None and len(b_implicit_hat) != len(self.b_implicit):
            raise ValueError(f"{self.name}: `b_implicit_hat` must have the length of `b_implicit`.")
        self.order = int(order)
        self.embedded_order = None if embedded_order is None else int(embedded_order)

    def __check_init__(self):
        s = len(self.b_explicit)
        n = self.name
        if s < 1:
            raise ValueError(f"{n}: `b_explicit` must have at least one entry (one per stage).")
        for field in ("a_explicit", "a_implicit"):
            rows = getattr(self, field)
            if len(rows) != s or any(len(r) != s for r in rows):
                raise ValueError(f"{n}: `{field}` must be a full {s} x {s} matrix (a tuple of {s} rows of {s}).")
        for field in ("b_implicit", "c_explicit", "c_implicit"):
            if len(getattr(self, field)) != s:
                raise ValueError(f"{n}: `{field}` must have length s = len(b_explicit) = {s}.")
        for i, row in enumerate(self.a_explicit):
            if any(v != 0.0 for v in row[i:]):
                raise ValueError(
                    f"{n}: `a_explicit` must be strictly lower triangular; row {i} has a nonzero "
                    f"entry on or above the diagonal."
                )
        for i, row in enumerate(self.a_implicit):
            if any(v != 0.0 for v in row[i + 1 :]):
                raise ValueError(
                    f"{n}: `a_implicit` must be lower triangular (diagonally implicit); row {i} has a "
                    f"nonzero entry above the diagonal."
                )
        for a_field, c_field in (("a_explicit", "c_explicit"), ("a_implicit", "c_implicit")):
            for i, (row, ci) in enumerate(zip(getattr(self, a_field), getattr(self, c_field))):
                if abs(math.fsum(row) - ci) > _TOL:
                    raise ValueError(f"{n}: row {i} of `{a_field}` does not sum to `{c_field}`[{i}] = {ci}.")
        for field in ("b_explicit", "b_implicit"):
            if abs(math.fsum(getattr(self, field)) - 1.0) > _TOL:
                raise ValueError(f"{n}: weights `{field}` must sum to 1.")
        errs = {"b_explicit_error": self.b_explicit_error, "b_implicit_error": self.b_implicit_error}
        given = [k for k, v in errs.items() if v is not None]
        if len(given) == 1:
            missing = "b_implicit_hat" if given[0] == "b_explicit_error" else "b_explicit_hat"
            raise ValueError(f"{n}: an embedded pair needs both parts; `{missing}` is missing.")
        for field in given:
            if len(errs[field]) != s or abs(math.fsum(errs[field])) > _TOL:
                raise ValueError(f"{n}: `{field}` (b - b_hat) must have length {s} and sum to 0.")
        if given and self.embedded_order is None:
            raise ValueError(f"{n}: an embedded pair is given, so give its `embedded_order` too.")
        if not given and self.embedded_order is not None:
            raise ValueError(f"{n}: `embedded_order` given without an embedded pair (`b_explicit_hat`, `b_implicit_hat`).")
        if self.order < 1:
            raise ValueError(f"{n}: `order` must be a positive integer.")

    @property
    def stages(self) -> int:
        return len(self.b_explicit)

    @property
    def error_order(self) -> int | None:
        """Exponent base for step-size control: `min(order, embedded_order) + 1`."""
        if self.embedded_order is None:
            return None
        return min(self.order, self.embedded_order) + 1

    @property
    def implicit_diagonal(self) -> tuple[float, ...]:
        """`(ã_11, ..., ã_ss)`; a zero entry is a stage with no implicit solve."""
        return tuple(row[i] for i, row in enumerate(self.a_implicit))

    @property
    def stiffly_accurate(self) -> bool:
        """Whether the last row of `Ã` equals `b̃` (so `y_next` is the last stage's `U_s`
        for the implicit part, and `R(∞) = 0` follows from A-stability plus invertibility)."""
        return all(abs(x - y) <= 1e-15 for x, y in zip(self.a_implicit[-1], self.b_implicit))

    def as_arrays(self):
        """`(A, b, c, Ã, b̃, c̃, b_err, b̃_err)` as numpy arrays (`b_err`, `b̃_err` may be `None`)."""

        def arr(x):
            return None if x is None else np.array(x, dtype=np.float64)

        return (
            arr(self.a_explicit),
            arr(self.b_explicit),
            arr(self.c_explicit),
            arr(self.a_implicit),
            arr(self.b_implicit),
            arr(self.c_implicit),
            arr(self.b_explicit_error),
            arr(self.b_implicit_error),
        )


# ----------------------------------------------------------------------------------------
# Second order, no embedded pair.

_G2 = 1.0 - 1.0 / math.sqrt(2.0)  # 1 - 1/√2, the L-stable choice for a 2-stage SDIRK

# IMEX_L2 — "L2" in PETSc's TSARKIMEX (TSARKIMEXL2), the L-stable IMEX-SSP2(2,2,2) scheme of
# L. Pareschi and G. Russo, "Implicit–explicit Runge–Kutta schemes and applications to hyperbolic
# systems with relaxation", J. Sci. Comput. 25 (2005) 129–155. Order 2, 2 stages, no embedded pair. Explicit
# part: Heun's method. Implicit part: 2-stage SDIRK with γ = 1 - 1/√2 (both stages implicit),
# A-stable and L-stable (R(∞) = (2γ² - 4γ + 1)/(2γ²) = 0), not stiffly accurate.
# c = (0, 1), c̃ = (γ, 1 - γ).
IMEX_L2 = IMEXTableau(
    "L2",
    a_explicit=[[0.0, 0.0], [1.0, 0.0]],
    b_explicit=[0.5, 0.5],
    a_implicit=[[_G2, 0.0], [1.0 - 2.0 * _G2, _G2]],
    b_implicit=[0.5, 0.5],
    c_implicit=[_G2, 1.0 - _G2],
    order=2,
)

_D2 = 1.0 - 1.0 / (2.0 * _G2)  # δ = 1 - 1/(2γ)

# ARS222 — ARS(2,2,2) of U. M. Ascher, S. J. Ruuth and R. J. Spiteri, "Implicit–explicit
# Runge–Kutta methods for time-dependent partial differential equations", Appl. Numer. Math.
# 25 (1997) 151–167. Order 2, 3 stages (2 implicit solves), no embedded pair.
# Implicit part: first stage explicit, then a 2-stage SDIRK with γ = 1 - 1/√2; stiffly accurate
# (last row of Ã = b̃), A-stable and L-stable. Both parts have c = (0, γ, 1).
ARS222 = IMEXTableau(
    "ARS222",
    a_explicit=[[0.0, 0.0, 0.0], [_G2, 0.0, 0.0], [_D2, 1.0 - _D2, 0.0]],
    b_explicit=[_D2, 1.0 - _D2, 0.0],
    a_implicit=[[0.0, 0.0, 0.0], [0.0, _G2, 0.0], [0.0, 1.0 - _G2, _G2]],
    b_implicit=[0.0, 1.0 - _G2, _G2],
    c_explicit=[0.0, _G2, 1.0],
    c_implicit=[0.0, _G2, 1.0],
    order=2,
)


# ----------------------------------------------------------------------------------------
# Kennedy & Carpenter, "Additive Runge–Kutta schemes for convection–diffusion–reaction
# equations", Appl. Numer. Math. 44 (2003) 139–181. ERK + ESDIRK pairs: ã_11 = 0 and constant
# diagonal γ after it, stiffly accurate, L-stable implicit part, explicit and implicit parts
# share c and b (and the embedded b̂), embedded pairs of one order less. The coefficients are the
# published rationals, rounded once to float64.


def _kc(name, gamma, a_exp, a_imp, b, b_hat, c, order):
    """Build a KC pair from the strictly lower rows of both parts (row i has i entries;
    the implicit diagonal γ and first stage ã_11 = 0 are added here)."""
    s = len(b)
    A = [[F(0)] * s for _ in range(s)]
    At = [[F(0)] * s for _ in range(s)]
    for i in range(1, s):
        A[i][:i] = a_exp[i - 1]
        At[i][:i] = a_imp[i - 1] if i < s - 1 else b[: s - 1]  # stiffly accurate last row
        At[i][i] = gamma
    return IMEXTableau(
        name,
        a_explicit=A,
        b_explicit=b,
        a_implicit=At,
        b_implicit=b,
        c_explicit=c,
        c_implicit=c,
        b_explicit_hat=b_hat,
        b_implicit_hat=b_hat,
        order=order,
        embedded_order=order - 1,
    )


_G3 = F(1767732205903, 4055673282236)

# ARK3_2_4L2SA — ARK3(2)4L[2]SA, Kennedy & Carpenter (2003) ("KenCarp3",
# SUNDIALS' ARK324L2SA, PETSc's TSARKIMEX3). Order 3, embedded order 2, 4 stages (3 implicit
# solves), γ ≈ 0.4359. Implicit part: ESDIRK, stiffly accurate, L-stable.
ARK3_2_4L2SA = _kc(
    "ARK3(2)4L[2]SA",
    _G3,
    a_exp=[
        [2 * _G3],
        [F(5535828885825, 10492691773637), F(788022342437, 10882634858940)],
        [F(6485989280629, 16251701735622), F(-4246266847089, 9704473918619), F(10755448449292, 10357097424841)],
    ],
    a_imp=[
        [_G3],
        [F(2746238789719, 10658868560708), F(-640167445237, 6845629431997)],
    ],
    b=[F(1471266399579, 7840856788654), F(-4482444167858, 7529755066697), F(11266239266428, 11593286722821), _G3],
    b_hat=[
        F(2756255671327, 12835298489170),
        F(-10771552573575, 22201958757719),
        F(9247589265047, 10645013368117),
        F(2193209047091, 5459859503100),
    ],
    c=[F(0), 2 * _G3, F(3, 5), F(1)],
    order=3,
)

# ARK4_3_6L2SA — ARK4(3)6L[2]SA, Kennedy & Carpenter (2003) ("KenCarp4",
# SUNDIALS' ARK436L2SA, PETSc's TSARKIMEX4). Order 4, embedded order 3, 6 stages (5 implicit
# solves), γ = 1/4. Implicit part: ESDIRK, stiffly accurate, L-stable.
ARK4_3_6L2SA = _kc(
    "ARK4(3)6L[2]SA",
    F(1, 4),
    a_exp=[
        [F(1, 2)],
        [F(13861, 62500), F(6889, 62500)],
        [F(-116923316275, 2393684061468), F(-2731218467317, 15368042101831), F(9408046702089, 11113171139209)],
        [
            F(-451086348788, 2902428689909),
            F(-2682348792572, 7519795681897),
            F(12662868775082, 11960479115383),
            F(3355817975965, 11060851509271),
        ],
        [
            F(647845179188, 3216320057751),
            F(73281519250, 8382639484533),
            F(552539513391, 3454668386233),
            F(3354512671639, 8306763924573),
            F(4040, 17871),
        ],
    ],
    a_imp=[
        [F(1, 4)],
        [F(8611, 62500), F(-1743, 31250)],
        [F(5012029, 34652500), F(-654441, 2922500), F(174375, 388108)],
        [F(15267082809, 155376265600), F(-71443401, 120774400), F(730878875, 902184768), F(2285395, 8070912)],
    ],
    b=[F(82889, 524892), F(0), F(15625, 83664), F(69875, 102672), F(-2260, 8211), F(1, 4)],
    b_hat=[
        F(4586570599, 29645900160),
        F(0),
        F(178811875, 945068544),
        F(814220225, 1159782912),
        F(-3700637, 11593932),
        F(61727, 225920),
    ],
    c=[F(0), F(1, 2), F(83, 250), F(31, 50), F(17, 20), F(1)],
    order=4,
)

# ARK5_4_8L2SA — ARK5(4)8L[2]SA, Kennedy & Carpenter (2003) ("KenCarp5",
# SUNDIALS' ARK548L2SA, PETSc's TSARKIMEX5). Order 5, embedded order 4, 8 stages (7 implicit
# solves), γ = 41/200. Implicit part: ESDIRK, stiffly accurate, L-stable. (This is the 2003
# scheme; the pairs ARK5(4)8L[2]SA_1 and _2 of Kennedy & Carpenter, "Higher-order additive
# Runge–Kutta schemes for ordinary differential equations", Appl. Numer. Math. 136 (2019)
# 183–205, are different methods with γ = 2/9.)
ARK5_4_8L2SA = _kc(
    "ARK5(4)8L[2]SA",
    F(41, 200),
    a_exp=[
        [F(41, 100)],
        [F(367902744464, 2072280473677), F(677623207551, 8224143866563)],
        [F(1268023523408, 10340822734521), F(0), F(1029933939417, 13636558850479)],
        [
            F(14463281900351, 6315353703477),
            F(0),
            F(66114435211212, 5879490589093),
            F(-54053170152839, 4284798021562),
        ],
        [
            F(14090043504691, 34967701212078),
            F(0),
            F(15191511035443, 11219624916014),
            F(-18461159152457, 12425892160975),
            F(-281667163811, 9011619295870),
        ],
        [
            F(19230459214898, 13134317526959),
            F(0),
            F(21275331358303, 2942455364971),
            F(-38145345988419, 4862620318723),
            F(-1, 8),
            F(-1, 8),
        ],
        [
            F(-19977161125411, 11928030595625),
            F(0),
            F(-40795976796054, 6384907823539),
            F(177454434618887, 12078138498510),
            F(782672205425, 8267701900261),
            F(-69563011059811, 9646580694205),
            F(7356628210526, 4942186776405),
        ],
    ],
    a_imp=[
        [F(41, 200)],
        [F(41, 400), F(-567603406766, 11931857230679)],
        [F(683785636431, 9252920307686), F(0), F(-110385047103, 1367015193373)],
        [
            F(3016520224154, 10081342136671),
            F(0),
            F(30586259806659, 12414158314087),
            F(-22760509404356, 11113319521817),
        ],
        [
            F(218866479029, 1489978393911),
            F(0),
            F(638256894668, 5436446318841),
            F(-1179710474555, 5321154724896),
            F(-60928119172, 8023461067671),
        ],
        [
            F(1020004230633, 5715676835656),
            F(0),
            F(25762820946817, 25263940353407),
            F(-2161375909145, 9755907335909),
            F(-211217309593, 5846859502534),
            F(-4269925059573, 7827059040749),
        ],
    ],
    b=[
        F(-872700587467, 9133579230613),
        F(0),
        F(0),
        F(22348218063261, 9555858737531),
        F(-1143369518992, 8141816002931),
        F(-39379526789629, 19018526304540),
        F(32727382324388, 42900044865799),
        F(41, 200),
    ],
    b_hat=[
        F(-975461918565, 9796059967033),
        F(0),
        F(0),
        F(78070527104295, 32432590147079),
        F(-548382580838, 3424219808633),
        F(-33438840321285, 15594753105479),
        F(3629800801594, 4656183773603),
        F(4035322873751, 18575991585200),
    ],
    c=[
        F(0),
        F(41, 100),
        F(2935347310677, 11292855782101),
        F(1426016391358, 7196633302097),
        F(92, 100),
        F(24, 100),
        F(3, 5),
        F(1),
    ],
    order=5,
)

IMEX_TABLEAUX = {
    "L2": IMEX_L2,
    "ARS222": ARS222,
    "ARK3": ARK3_2_4L2SA,
    "ARK4": ARK4_3_6L2SA,
    "ARK5": ARK5_4_8L2SA,
}
