"""Jitted JAX kernels behind the domains' `sample_interior`, `sample_boundary` and `contains`.

One XLA computation per `(n, d, dtype)`, inlined under an outer jit. The domains' methods
validate their arguments, convert the domain's float64 NumPy fields to the default floating
dtype and call these; the kernels take and return `jnp` arrays only.
"""

import functools

import jax
import jax.numpy as jnp


def _contains_tol(dtype, scale: jax.Array) -> jax.Array:
    """Inside-test tolerance: 1e-12 in float64 (16 ulp in float32), times max(1, scale)."""
    return max(1e-12, 16.0 * float(jnp.finfo(dtype).eps)) * jnp.maximum(1.0, scale)


# ---------------------------------------------------------------------------------------------
# Box
# ---------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames="n")
def _box_interior(key, lower, upper, n):
    return jax.random.uniform(
        key, (n, lower.shape[0]), dtype=lower.dtype, minval=lower, maxval=upper
    )


@functools.partial(jax.jit, static_argnames="n")
def _box_boundary(key, lower, upper, n):
    d = lower.shape[0]
    lengths = upper - lower
    # Face 2i is {x_i = lower_i}, face 2i+1 is {x_i = upper_i}; both have measure prod_{j!=i}.
    eye = jnp.eye(d, dtype=jnp.bool_)
    face_measure = jnp.repeat(jnp.prod(jnp.where(eye, 1.0, lengths[None, :]), axis=1), 2)
    key_face, key_point = jax.random.split(key)
    face = jax.random.choice(key_face, 2 * d, shape=(n,), p=face_measure / face_measure.sum())
    axis = face // 2
    side = face % 2  # 0: lower face, 1: upper face
    x = _box_interior(key_point, lower, upper, n)
    on_axis = jax.nn.one_hot(axis, d, dtype=jnp.bool_)
    face_value = jnp.where(side[:, None] == 1, upper[None, :], lower[None, :])
    x = jnp.where(on_axis, face_value, x)
    normals = on_axis.astype(lower.dtype) * (2 * side - 1).astype(lower.dtype)[:, None]
    return x, normals


@jax.jit
def _box_contains(x, lower, upper):
    scale = jnp.maximum(jnp.max(jnp.abs(lower)), jnp.max(jnp.abs(upper)))
    tol = _contains_tol(x.dtype, scale)
    return jnp.all((x >= lower - tol) & (x <= upper + tol), axis=-1)


# ---------------------------------------------------------------------------------------------
# Ball
# ---------------------------------------------------------------------------------------------


def _sphere_directions(key, n, d, dtype):
    """(n, d) unit vectors uniform on the sphere: normalised standard Gaussians."""
    z = jax.random.normal(key, (n, d), dtype=dtype)
    norm = jnp.linalg.norm(z, axis=-1, keepdims=True)
    return z / jnp.where(norm > 0, norm, 1.0)


@functools.partial(jax.jit, static_argnames="n")
def _ball_interior(key, center, radius, n):
    d, dtype = center.shape[0], center.dtype
    if d == 1:
        u = jax.random.uniform(key, (n, 1), dtype=dtype, minval=-1.0, maxval=1.0)
        return center + radius * u
    key_dir, key_rad = jax.random.split(key)
    direction = _sphere_directions(key_dir, n, d, dtype)
    rad = radius * jax.random.uniform(key_rad, (n, 1), dtype=dtype) ** (1.0 / d)
    return center + rad * direction


@functools.partial(jax.jit, static_argnames="n")
def _ball_boundary(key, center, radius, n):
    d, dtype = center.shape[0], center.dtype
    if d == 1:
        normals = jnp.where(jax.random.bernoulli(key, 0.5, (n, 1)), 1.0, -1.0).astype(dtype)
    else:
        normals = _sphere_directions(key, n, d, dtype)
    return center + radius * normals, normals


@jax.jit
def _ball_contains(x, center, radius):
    tol = _contains_tol(x.dtype, jnp.max(jnp.abs(center)) + radius)
    return jnp.linalg.norm(x - center, axis=-1) <= radius + tol


# ---------------------------------------------------------------------------------------------
# PointCloud
# ---------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames="n")
def _pick_rows(key, arrays, n):
    idx = jax.random.randint(key, (n,), 0, arrays[0].shape[0])
    return tuple(a[idx] for a in arrays)
