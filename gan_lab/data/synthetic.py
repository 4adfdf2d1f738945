"""The built-in data set: procedural images of one coloured shape (disc, square or triangle) on a
striped gradient background. Deterministic for a seed, any size, 1 or 3 channels, no download.

Simple enough that a small DCGAN visibly learns it within `make run`, varied enough (shape,
position, size, colours, background direction) that mode collapse shows in the sample grid.
"""

from __future__ import annotations

import numpy as np

_CHUNK = 256  # images generated at once: keeps the float intermediates to a few MB


def _chunk(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    grid = np.linspace(0.0, 1.0, size, dtype=np.float32)
    y = grid[None, :, None]
    x = grid[None, None, :]

    def draw(low: float, high: float, *shape: int) -> np.ndarray:
        return rng.uniform(low, high, (count, *shape)).astype(np.float32)

    # Background: a gradient between two dark colours along a random direction, plus faint stripes.
    angle = draw(0, 2 * np.pi)[:, None, None]
    along = 0.5 + 0.5 * (np.cos(angle) * (x - 0.5) + np.sin(angle) * (y - 0.5)) * np.sqrt(2)
    start, end = draw(0.0, 0.45, 3), draw(0.0, 0.45, 3)
    background = start[:, :, None, None] + (end - start)[:, :, None, None] * along[:, None]
    frequency = draw(2, 6)[:, None, None]
    stripes = 0.06 * np.sin(2 * np.pi * frequency * (np.sin(angle) * x - np.cos(angle) * y))
    background = background + stripes[:, None]

    # Foreground: one bright shape.
    cx, cy = draw(0.3, 0.7)[:, None, None], draw(0.3, 0.7)[:, None, None]
    radius = draw(0.14, 0.28)[:, None, None]
    kind = rng.integers(0, 3, count)[:, None, None]
    dx, dy = x - cx, y - cy
    disc = dx**2 + dy**2 < radius**2
    square = np.maximum(np.abs(dx), np.abs(dy)) < 0.85 * radius
    triangle = (dy < 0.8 * radius) & (np.abs(dx) < 0.6 * (dy + radius))
    mask = np.where(kind == 0, disc, np.where(kind == 1, square, triangle))
    colour = draw(0.55, 1.0, 3)
    images = np.where(mask[:, None], colour[:, :, None, None], background)
    return np.clip(images * 255.0 + 0.5, 0, 255).astype(np.uint8)


def synthetic_images(count: int, size: int, channels: int, seed: int) -> np.ndarray:
    """`count` uint8 images of shape (channels, size, size), the same for the same arguments."""
    rng = np.random.default_rng(seed)
    images = np.concatenate(
        [_chunk(rng, min(_CHUNK, count - start), size) for start in range(0, count, _CHUNK)]
    )
    if channels == 1:  # ITU-R 601 luma, as PIL's convert("L") computes it
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)[None, :, None, None]
        luma = (images.astype(np.float32) * weights).sum(axis=1, keepdims=True)
        images = np.clip(luma + 0.5, 0, 255).astype(np.uint8)
    return images
