"""Generated sets, seeded and deterministic: ``teacher`` and ``correlated-gaussian``.

Every random draw comes from ``rng(seed, set_tag, stream)``: one stream for the set's fixed
parts (teacher weights, rotation), one for the train rows and one for the test rows, so the
test rows do not change when ``n_train`` does, and train and test share the same teacher.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Sequence

import numpy as np

from analogsim.data.dataset import Raw
from analogsim.errors import DataError

STREAMS = {"model": 0, "train": 1, "test": 2}


def rng(seed: int, tag: str, stream: str) -> np.random.Generator:
    """Independent numpy Generator for (seed, set ``tag``, ``stream`` in STREAMS)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise DataError(f"seed must be a non-negative int, got {seed!r}")
    return np.random.default_rng([seed, zlib.crc32(tag.encode()), STREAMS[stream]])


#: Largest size option (rows, inputs, widths) of a generated set.
MAX_SIZE = 10_000_000


def positive_int(name: str, value: object) -> int:
    """``value`` if it is an int in 1 … ``MAX_SIZE``, else DataError naming option ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SIZE:
        raise DataError(f"option {name} must be an int in 1 … {MAX_SIZE:,}, got {value!r}")
    return value


def nonnegative(name: str, value: object) -> float:
    """``value`` as float if it is a finite number ≥ 0, else DataError naming ``name``."""
    if not isinstance(value, int | float) or isinstance(value, bool) \
            or not math.isfinite(value) or value < 0:
        raise DataError(f"option {name} must be a finite number >= 0, got {value!r}")
    return float(value)


def rows(split: str, n_train: int, n_test: int) -> int:
    """Number of rows of ``split``, validated."""
    return positive_int("n_train", n_train) if split == "train" \
        else positive_int("n_test", n_test)


# --- teacher ---------------------------------------------------------------------------------

ACTIVATIONS = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0)}


def teacher_network(seed: int, n_inputs: int = 20, hidden: Sequence[int] = (64,),
                    n_outputs: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """The teacher MLP of ``teacher`` for ``seed``: ``[(W (out, in), b (out,)), …]``, float64.

    Weights are N(0, 1/fan_in), biases N(0, 0.1²), so every pre-activation has unit scale.
    """
    sizes = [positive_int("n_inputs", n_inputs),
             *(positive_int("hidden", h) for h in hidden), positive_int("n_outputs", n_outputs)]
    g = rng(seed, "teacher", "model")
    return [(g.standard_normal((fo, fi)) / math.sqrt(fi), 0.1 * g.standard_normal(fo))
            for fi, fo in itertools.pairwise(sizes)]


def teacher_forward(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray,
                    activation: str = "tanh") -> np.ndarray:
    """Teacher output ``(N, n_outputs)`` for inputs ``x`` ``(N, n_inputs)``; linear last layer."""
    act = ACTIVATIONS[activation]
    h = x.astype(np.float64)
    for k, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if k < len(layers) - 1:
            h = act(h)
    return h


def teacher(split: str, seed: int, *, n_train: int = 10000, n_test: int = 2000,
            n_inputs: int = 20, hidden: int | Sequence[int] = (64,), n_outputs: int = 5,
            activation: str = "tanh", noise_std: float = 0.0) -> Raw:
    """Regression on a random teacher MLP: ``x ~ N(0, I)`` ``(N, n_inputs)``,
    ``y = teacher(x) + noise_std·N(0, 1)`` ``(N, n_outputs)``; weights from ``teacher_network``
    (``hidden``: one width per hidden layer, or a single int).
    """
    if activation not in ACTIVATIONS:
        raise DataError(f"option activation must be one of {sorted(ACTIVATIONS)}, "
                        f"got {activation!r}")
    hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    layers = teacher_network(seed, n_inputs, hidden, n_outputs)
    n = rows(split, n_train, n_test)
    g = rng(seed, "teacher", split)
    x = g.standard_normal((n, n_inputs))
    y = teacher_forward(layers, x, activation)
    y += nonnegative("noise_std", noise_std) * g.standard_normal(y.shape)
    return Raw(x=x.astype(np.float32), targets=y.astype(np.float32),
               source=f"generated (teacher MLP {n_inputs}-{'-'.join(map(str, hidden))}-"
                      f"{n_outputs} {activation}, seed={seed})")


# --- correlated-gaussian ---------------------------------------------------------------------

def power_law_spectrum(n_inputs: int, alpha: float) -> np.ndarray:
    """Eigenvalues ``λ_k ∝ (k + 1)^-alpha``, k = 0..n_inputs-1, scaled to mean 1 (float64)."""
    lam = np.arange(1, n_inputs + 1, dtype=np.float64) ** -float(alpha)
    return lam * (n_inputs / lam.sum())


def _orthogonal(g: np.random.Generator, n: int) -> np.ndarray:
    """A Haar-random orthogonal ``(n, n)`` matrix (QR of a Gaussian, signs fixed)."""
    q, r = np.linalg.qr(g.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _spectrum(n_inputs: int, alpha: float, eigenvalues: Sequence[float] | None) -> np.ndarray:
    if eigenvalues is None:
        return power_law_spectrum(positive_int("n_inputs", n_inputs),
                                  nonnegative("alpha", alpha))
    try:
        lam = np.asarray(eigenvalues, dtype=np.float64)
    except (TypeError, ValueError):
        lam = np.empty(0)
    if lam.shape != (n_inputs,) or not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise DataError(f"option eigenvalues must be {n_inputs} finite numbers >= 0 "
                        "(one per input)")
    return lam


def correlated_gaussian_model(seed: int, n_inputs: int = 32, alpha: float = 1.0,
                              eigenvalues: Sequence[float] | None = None, n_outputs: int = 10
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed parts for ``seed``: eigenvalues ``(D,)``, rotation ``Q`` ``(D, D)`` and the linear
    teacher ``W`` ``(n_outputs, D)``. The input covariance is ``Q diag(λ) Qᵀ``; each row of
    ``W`` is scaled so that its output ``W_k·x`` has unit variance."""
    lam = _spectrum(n_inputs, alpha, eigenvalues)
    g = rng(seed, "correlated-gaussian", "model")
    q = _orthogonal(g, n_inputs)
    w = g.standard_normal((positive_int("n_outputs", n_outputs), n_inputs))
    var = np.einsum("kd,d->k", (w @ q) ** 2, lam)  # Var(W_k·x) = W_k Q diag(λ) Qᵀ W_kᵀ
    return lam, q, w / np.sqrt(np.where(var > 0, var, 1.0))[:, None]


def correlated_gaussian(split: str, seed: int, *, n_train: int = 10000, n_test: int = 2000,
                        n_inputs: int = 32, alpha: float = 1.0,
                        eigenvalues: Sequence[float] | None = None,
                        target: str = "classification", n_outputs: int = 10,
                        noise_std: float = 0.0) -> Raw:
    """Zero-mean Gaussian inputs ``(N, n_inputs)`` with covariance ``Q diag(λ) Qᵀ``
    (power-law ``λ_k ∝ (k+1)^-alpha`` unless ``eigenvalues`` is given; random rotation Q).

    Targets come from a linear teacher ``s = W x + noise_std·N(0, 1)`` (each ``W_k·x`` of unit
    variance): with
    ``target="classification"`` the label is ``argmax s`` over ``n_outputs`` classes, with
    ``target="regression"`` ``y = s`` ``(N, n_outputs)``.
    """
    if target not in ("classification", "regression"):
        raise DataError(f"option target must be 'classification' or 'regression', "
                        f"got {target!r}")
    if target == "classification" and positive_int("n_outputs", n_outputs) < 2:
        raise DataError("option n_outputs must be >= 2 classes for classification")
    lam, q, w = correlated_gaussian_model(seed, n_inputs, alpha, eigenvalues, n_outputs)
    n = rows(split, n_train, n_test)
    g = rng(seed, "correlated-gaussian", split)
    x = (g.standard_normal((n, n_inputs)) * np.sqrt(lam)) @ q.T
    s = x @ w.T + nonnegative("noise_std", noise_std) * g.standard_normal((n, n_outputs))
    spec = "given spectrum" if eigenvalues is not None else f"alpha={alpha}"
    source = f"generated (correlated Gaussian D={n_inputs}, {spec}, {target}, seed={seed})"
    if target == "regression":
        return Raw(x=x.astype(np.float32), targets=s.astype(np.float32), source=source)
    return Raw(x=x.astype(np.float32), labels=s.argmax(axis=1).astype(np.int64),
               classes=tuple(str(k) for k in range(n_outputs)), source=source)
