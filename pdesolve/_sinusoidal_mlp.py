"""The NeuralIVP default network: an MLP on a sinusoidal embedding, with a boundary bump.

Finzi, Potapczynski, Choptuik & Wilson, *A stable and scalable method for solving initial
value PDEs with neural networks* (ICLR 2023), section 4 and appendix B.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._validation import check_int

__all__ = ["AbstractLinearHead", "SinusoidalMLP", "sinusoidal_embedding"]


def sinusoidal_embedding(z: jax.Array, n_frequencies: int = 5, alpha: float = 1.0) -> jax.Array:
    """`γ(z) = [sin(2^k π z / 2) 2^{-α k}, cos(2^k π z / 2) 2^{-α k}]_{k=0..L}` for one point.

    **Arguments:**

    - `z`: shape (d,), coordinates scaled to [-1, 1].
    - `n_frequencies`: L, the highest frequency power (the paper: 5).
    - `alpha`: decay α of the higher frequencies (the paper: 1).

    **Returns:** shape (2 (L + 1) d,). Cost O(L d).
    """
    k = jnp.arange(n_frequencies + 1, dtype=z.dtype)
    freq = (2.0**k)[:, None] * (jnp.pi / 2) * z[None, :]  # (L+1, d)
    weight = (2.0 ** (-alpha * k))[:, None]
    return jnp.concatenate([(jnp.sin(freq) * weight).ravel(), (jnp.cos(freq) * weight).ravel()])


class _Trunk(eqx.Module):
    """A plain MLP `R^m -> R`: hidden layers with an activation, then a linear head."""

    hidden: tuple[eqx.nn.Linear, ...]
    head: eqx.nn.Linear
    activation: Callable = eqx.field(static=True)

    def features(self, h: jax.Array) -> jax.Array:
        for layer in self.hidden:
            h = self.activation(layer(h))
        return h

    def __call__(self, h: jax.Array) -> jax.Array:
        return self.head(self.features(h))[0]


class AbstractLinearHead(eqx.Module):
    """A network whose output is linear in its last-layer weights, so that those can be fit
    by one least-squares solve (NeuralIVP's head tuning after the Adam fit of the initial
    condition and at restarts). Subclass it and implement both methods to have your own
    network head-tuned; other networks are fit by Adam alone.
    """

    @abc.abstractmethod
    def head_design(self, x: jax.Array) -> jax.Array:
        """Design rows at ONE point: shape `(k, h)` for `k` output components, such that
        component `j` is `row_j · c_j` for the head coefficients `c_j` (length `h`)."""

    @abc.abstractmethod
    def with_head(self, coefficients: jax.Array) -> AbstractLinearHead:
        """The network with head coefficients `coefficients` (`(k, h)`) installed."""


class SinusoidalMLP(AbstractLinearHead):
    """`u(x) = b(x) · [trunk_j(1.5 γ(z(x)))]_j`: NeuralIVP's network (Finzi et al. 2023).

    * `z(x) = 2 (x − lower) / (upper − lower) − 1` maps the box to `[-1, 1]^d`;
    * `γ` is `sinusoidal_embedding` (L = `n_frequencies`, decay α), scaled by
      `embedding_scale` (the paper: 1.5);
    * one trunk per output component (an MLP with `depth` hidden layers of `width` units and
      `activation`, the paper: 3 x 100 swish) — components do not share weights;
    * with `bump=True` the output is multiplied by `b(x) = ∏_i (1 − z_i²)`, so the network
      vanishes on the box boundary: zero Dirichlet conditions hold exactly.

    **Arguments:**

    - `key`: PRNG key for the initialisation (equinox's default `Linear` init).
    - `dim`: spatial dimension d.
    - `lower`, `upper`: the box corners, shape (d,).
    - `n_outputs`: `None` for a scalar field (output shape `()`), or k for a system
      (output shape `(k,)`).
    - `width`, `depth`, `activation`, `n_frequencies`, `alpha`, `embedding_scale`, `bump`: as
      above.
    - `dtype`: parameter dtype (default: JAX's default float).

    Call it on ONE point `x` of shape (d,). Cost per point: O(width² depth k + L d width k).

    Head tuning: `head_design` gives the per-component design rows
    `b(x) [features(x), 1]` so that the last layer can be fit by linear least squares, and
    `with_head` installs fitted weights.
    """

    trunks: tuple[_Trunk, ...]
    # The box is static (tuples), never a parameter: NeuralIVP and the fits differentiate
    # with respect to every inexact array of the model.
    lower: tuple[float, ...] = eqx.field(static=True)
    upper: tuple[float, ...] = eqx.field(static=True)
    n_outputs: int | None = eqx.field(static=True)
    n_frequencies: int = eqx.field(static=True)
    alpha: float = eqx.field(static=True)
    embedding_scale: float = eqx.field(static=True)
    bump: bool = eqx.field(static=True)

    def __init__(
        self,
        key: jax.Array,
        dim: int,
        lower=None,
        upper=None,
        *,
        n_outputs: int | None = None,
        width: int = 100,
        depth: int = 3,
        activation: Callable = jax.nn.swish,
        n_frequencies: int = 5,
        alpha: float = 1.0,
        embedding_scale: float = 1.5,
        bump: bool = True,
        dtype=None,
    ):
        dim = check_int("dim", dim, 1, hint="It is the dimension d of the input points.")
        width = check_int("width", width, 1, hint="It is the number of hidden units per layer.")
        depth = check_int("depth", depth, 1, hint="It is the number of hidden layers.")
        n_frequencies = check_int("n_frequencies", n_frequencies, 0, hint="It is L, the highest frequency 2^L of the embedding.")
        if n_outputs is not None:
            n_outputs = check_int("n_outputs", n_outputs, 1, hint="It is the number k of output components; None gives a scalar field.")
        dtype = jnp.result_type(float) if dtype is None else dtype
        lower = -np.ones(dim) if lower is None else np.asarray(lower, dtype=np.float64)
        upper = np.ones(dim) if upper is None else np.asarray(upper, dtype=np.float64)
        if lower.shape != (dim,) or upper.shape != (dim,) or not np.all(upper > lower):
            raise ValueError(
                f"`lower` and `upper` must have shape ({dim},) with lower < upper; got "
                f"{lower} and {upper}."
            )
        n_in = 2 * (n_frequencies + 1) * dim
        trunks = []
        for k in jax.random.split(key, 1 if n_outputs is None else n_outputs):
            keys = jax.random.split(k, depth + 1)
            sizes = [n_in] + [width] * depth
            hidden = tuple(
                eqx.nn.Linear(sizes[i], sizes[i + 1], key=keys[i], dtype=dtype) for i in range(depth)
            )
            head = eqx.nn.Linear(width, 1, key=keys[-1], dtype=dtype)
            trunks.append(_Trunk(hidden, head, activation))
        self.trunks = tuple(trunks)
        self.lower = tuple(float(v) for v in lower)
        self.upper = tuple(float(v) for v in upper)
        self.n_outputs = None if n_outputs is None else int(n_outputs)
        self.n_frequencies = int(n_frequencies)
        self.alpha = float(alpha)
        self.embedding_scale = float(embedding_scale)
        self.bump = bool(bump)

    @property
    def dim(self) -> int:
        return len(self.lower)

    def _scaled(self, x):
        lower = jnp.asarray(self.lower, x.dtype)
        upper = jnp.asarray(self.upper, x.dtype)
        return 2.0 * (x - lower) / (upper - lower) - 1.0

    def _embed(self, z):
        return self.embedding_scale * sinusoidal_embedding(z, self.n_frequencies, self.alpha)

    def _bump(self, z):
        return jnp.prod(1.0 - z**2) if self.bump else jnp.ones((), z.dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        z = self._scaled(x)
        h = self._embed(z)
        out = jnp.stack([trunk(h) for trunk in self.trunks]) * self._bump(z)
        return out[0] if self.n_outputs is None else out

    def head_design(self, x: jax.Array) -> jax.Array:
        """Design rows for the last layers at ONE point: shape (k, width + 1), row j is
        `b(x) [features_j(x), 1]` so that component j is `row_j · [w_j, bias_j]`."""
        z = self._scaled(x)
        h = self._embed(z)
        b = self._bump(z)
        rows = [jnp.concatenate([trunk.features(h), jnp.ones((1,), h.dtype)]) for trunk in self.trunks]
        return jnp.stack(rows) * b

    def with_head(self, coefficients: jax.Array) -> SinusoidalMLP:
        """Install last-layer weights: `coefficients` (k, width + 1) = `[w_j, bias_j]` rows."""
        model = self
        for j in range(len(self.trunks)):
            w = coefficients[j, :-1][None, :]
            b = coefficients[j, -1:]

            def head(m: SinusoidalMLP, j: int = j) -> tuple:
                return m.trunks[j].head.weight, m.trunks[j].head.bias

            model = eqx.tree_at(head, model, (w, b))
        return model
