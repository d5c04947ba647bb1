"""Volumes and surface areas of balls (used by `Ball.volume` and the ball's node set)."""

import math

import scipy.special


def _ball_volume(d: int, radius: float) -> float:
    """Lebesgue measure of a d-ball: pi^(d/2) / Gamma(d/2 + 1) * r^d."""
    return float(math.pi ** (d / 2) / scipy.special.gamma(d / 2 + 1) * radius**d)


def _sphere_area(d: int, radius: float) -> float:
    """Surface measure of the boundary of a d-ball (2 in 1-D: the counting measure)."""
    return d * _ball_volume(d, radius) / radius
