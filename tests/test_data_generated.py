"""Bundled and generated sets: digits, teacher, correlated-gaussian (shapes, determinism,
statistics); the robot-dynamics set and its Newton–Euler model, checked physically."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from analogsim import data
from analogsim.data import generated, robot
from analogsim.data.robot import (
    GRAVITY,
    IIWA_LIKE,
    forward_kinematics,
    inverse_dynamics,
    mass_matrix,
    potential_energy,
    sample_trajectories,
)
from analogsim.errors import DataError


def _same(a: data.Dataset, b: data.Dataset) -> bool:
    return torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


# --- digits ------------------------------------------------------------------------------------

def test_digits_fixed_stratified_split() -> None:
    tr, te = data.load("digits", "train"), data.load("digits", "test", flatten=False)
    assert tr.x.shape == (1437, 64) and te.x.shape == (360, 1, 8, 8)
    assert float(tr.x.min()) == 0.0 and float(tr.x.max()) == 1.0
    counts = torch.bincount(te.labels)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~36 per class
    assert _same(tr, data.load("digits", "train", seed=5))  # the split does not move
    assert tr.source.startswith("scikit-learn") and tr.image_shape == (1, 8, 8)
    both = torch.cat([tr.x, te.x.reshape(360, -1)])
    assert torch.unique(both, dim=0).shape[0] >= 1790  # disjoint halves of the 1797 images


# --- teacher -----------------------------------------------------------------------------------

def test_teacher_deterministic_and_consistent() -> None:
    kw = {"n_train": 300, "n_test": 50}
    a = data.load("teacher", "train", seed=3, **kw)
    assert _same(a, data.load("teacher", "train", seed=3, **kw))
    assert not _same(a, data.load("teacher", "train", seed=4, **kw))
    assert a.x.shape == (300, 20) and a.y.shape == (300, 5) and a.task == "regression"
    assert a.labels is None and a.classes is None and a.n_outputs == 5
    te = data.load("teacher", "test", seed=3, **kw)
    layers = generated.teacher_network(3)
    for ds in (a, te):  # train and test share the teacher
        want = generated.teacher_forward(layers, ds.x.double().numpy())
        assert np.allclose(ds.y.numpy(), want, atol=1e-5)
    # test rows do not depend on n_train
    assert _same(te, data.load("teacher", "test", seed=3, n_train=10, n_test=50))


def test_teacher_options() -> None:
    ds = data.load("teacher", "train", n_train=64, n_inputs=7, hidden=(5, 4), n_outputs=2,
                   activation="relu", noise_std=0.1)
    assert ds.x.shape == (64, 7) and ds.y.shape == (64, 2)
    clean = generated.teacher_forward(generated.teacher_network(0, 7, (5, 4), 2),
                                      ds.x.double().numpy(), "relu")
    resid = ds.y.numpy() - clean
    assert 0.05 < resid.std() < 0.2
    with pytest.raises(DataError, match="teacher has no option width; its options: n_train"):
        data.load("teacher", "train", width=3)
    with pytest.raises(DataError, match="option activation must be one of"):
        data.load("teacher", "train", activation="gelu")
    with pytest.raises(DataError, match="option n_train must be an int in 1 … 10,000,000"):
        data.load("teacher", "train", n_train=0)
    with pytest.raises(DataError, match="option n_inputs must be an int in 1 … 10,000,000"):
        data.load("teacher", "train", n_inputs=10**12)
    with pytest.raises(DataError, match="seed must be a non-negative int"):
        data.load("teacher", "train", seed=-1)


# --- correlated-gaussian -----------------------------------------------------------------------

def test_correlated_gaussian_covariance_matches_spectrum() -> None:
    ds = data.load("correlated-gaussian", "train", seed=2, n_train=40000, n_inputs=8, alpha=1.5)
    lam, q, _ = generated.correlated_gaussian_model(2, n_inputs=8, alpha=1.5)
    assert np.allclose(lam, generated.power_law_spectrum(8, 1.5)) and math.isclose(lam.mean(), 1)
    assert np.allclose(lam[:-1] / lam[1:], (np.arange(2, 9) / np.arange(1, 8)) ** 1.5)
    assert np.allclose(q @ q.T, np.eye(8), atol=1e-12)
    emp = np.cov(ds.x.double().numpy(), rowvar=False)
    assert np.allclose(emp, q @ np.diag(lam) @ q.T, atol=0.06)
    assert np.allclose(np.sort(np.linalg.eigvalsh(emp))[::-1], lam, rtol=0.05, atol=0.01)
    assert abs(emp[np.triu_indices(8, 1)]).max() > 0.2  # genuinely correlated inputs


def test_correlated_gaussian_targets() -> None:
    cls = data.load("correlated-gaussian", "train", n_train=5000)
    assert cls.x.shape == (5000, 32) and cls.y.shape == (5000, 10)
    assert cls.task == "classification" and cls.classes == tuple(str(k) for k in range(10))
    counts = torch.bincount(cls.labels, minlength=10)
    assert counts.min() > 200  # no class starved
    _, _, w = generated.correlated_gaussian_model(0)
    assert torch.equal(cls.labels, torch.from_numpy((cls.x.double().numpy() @ w.T).argmax(1)))
    reg = data.load("correlated-gaussian", "test", target="regression", n_outputs=3,
                    n_test=4000, eigenvalues=[4.0] + [0.5] * 31)
    assert reg.y.shape == (4000, 3) and reg.labels is None
    assert np.allclose(reg.y.std(0).numpy(), 1.0, atol=0.06)  # unit-variance teacher outputs
    with pytest.raises(DataError, match="eigenvalues must be 32 finite numbers"):
        data.load("correlated-gaussian", "train", eigenvalues=[1.0, -1.0])
    with pytest.raises(DataError, match="target must be"):
        data.load("correlated-gaussian", "train", target="ranking")


def test_standardize_generated_with_train_stats() -> None:
    raw_tr = data.load("correlated-gaussian", "train", n_train=500, n_test=100)
    raw_te = data.load("correlated-gaussian", "test", n_train=500, n_test=100)
    te = data.load("correlated-gaussian", "test", n_train=500, n_test=100, standardize=True)
    mean = raw_tr.x.double().mean(0)
    std = raw_tr.x.double().std(0, unbiased=False)
    assert torch.allclose(te.x.double(), (raw_te.x.double() - mean) / std, atol=1e-5)


# --- robot-dynamics: the model -----------------------------------------------------------------

def _rows(*qs: list[float]) -> np.ndarray:
    return np.array(qs, dtype=np.float64)


def test_upright_arm_needs_no_torque() -> None:
    zero = np.zeros((1, 7))
    assert np.allclose(inverse_dynamics(IIWA_LIKE, zero, zero, zero), 0, atol=1e-12)
    _, origin = forward_kinematics(IIWA_LIKE, zero)
    assert np.allclose(origin[0, -1], [0, 0, 0.36 + 0.42 + 0.40 + 0.126])


def test_static_gravity_matches_hand_computation() -> None:
    """Shoulder (joint 2) at 90°: the arm sticks out horizontally. Holding it takes
    g·Σ m_k·ℓ_k at joint 2 (ℓ_k: COM distance from the shoulder), and likewise at the
    elbow (joint 4) and wrist (joint 6) for the links beyond them; the axial joints carry 0."""
    q = _rows([0, math.pi / 2, 0, 0, 0, 0, 0])
    tau = inverse_dynamics(IIWA_LIKE, q, 0 * q, 0 * q)[0]
    m = [4.0, 4.0, 3.0, 2.7, 1.7, 1.8, 0.3]  # documented masses, links 1..7
    # COM distances from the shoulder along the arm: housing 2 (0.2 m long) centred 0.1 m
    # out; link 3 halfway along 0.42; housing 4 at 0.42 + 0.1; link 5 at 0.42 + 0.2;
    # housing 6 (0.12 m) at 0.82 + 0.06; flange 7 at 0.82 + 0.063.
    ell = {2: 0.1, 3: 0.21, 4: 0.52, 5: 0.62, 6: 0.88, 7: 0.883}
    shoulder = GRAVITY * sum(m[k - 1] * ell[k] for k in range(2, 8))
    elbow = GRAVITY * sum(m[k - 1] * (ell[k] - 0.42) for k in range(4, 8))
    wrist = GRAVITY * sum(m[k - 1] * (ell[k] - 0.82) for k in range(6, 8))
    assert math.isclose(shoulder, 52.355, rel_tol=1e-4)  # 9.81 · 5.3369 N·m
    # height of the arm ~ cos(q2), so τ2 = ∂V/∂q2 = −g Σ m ℓ at q2 = +90°
    assert math.isclose(tau[1], -shoulder, rel_tol=1e-12)
    assert math.isclose(abs(tau[3]), elbow, rel_tol=1e-12)
    assert math.isclose(abs(tau[5]), wrist, rel_tol=1e-12)
    assert np.allclose(tau[[0, 2, 4, 6]], 0, atol=1e-12)


def test_static_torque_is_gradient_of_potential_energy() -> None:
    q = np.random.default_rng(0).uniform(-2, 2, (6, 7))
    tau = inverse_dynamics(IIWA_LIKE, q, 0 * q, 0 * q)
    eps = 1e-6
    grad = np.stack([(potential_energy(IIWA_LIKE, q + eps * e)
                      - potential_energy(IIWA_LIKE, q - eps * e)) / (2 * eps)
                     for e in np.eye(7)], axis=1)
    assert np.allclose(tau, grad, atol=1e-7)
    assert np.abs(tau).max() > 10  # not trivially zero
    no_g = inverse_dynamics(IIWA_LIKE, q, 0 * q, 0 * q, gravity=0.0)
    assert np.allclose(no_g, 0, atol=1e-12)


def test_mass_matrix_symmetric_positive_and_linear_in_acceleration() -> None:
    g = np.random.default_rng(1)
    q, qd, qdd = (g.uniform(-1.5, 1.5, (5, 7)) for _ in range(3))
    m = mass_matrix(IIWA_LIKE, q)
    assert np.allclose(m, np.swapaxes(m, 1, 2), atol=1e-12)
    assert np.linalg.eigvalsh(m).min() > 0
    full = inverse_dynamics(IIWA_LIKE, q, qd, qdd)
    no_acc = inverse_dynamics(IIWA_LIKE, q, qd, 0 * qdd)
    assert np.allclose(full - no_acc, np.einsum("nij,nj->ni", m, qdd), atol=1e-10)


def test_power_balance_along_a_trajectory() -> None:
    """Without friction, τ·q̇ = d/dt (½ q̇ᵀ M q̇ + V): the power balance of the whole arm."""
    t0, h = 0.37, 1e-4
    g = np.random.default_rng(2)
    amp, om, ph = g.uniform(0.3, 1.0, 7), g.uniform(0.5, 2.0, 7), g.uniform(0, 6, 7)

    def state(t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (amp * np.sin(om * t + ph))[None], (amp * om * np.cos(om * t + ph))[None], \
            (-amp * om**2 * np.sin(om * t + ph))[None]

    def energy(t: float) -> float:
        q, qd, _ = state(t)
        kin = 0.5 * qd[0] @ mass_matrix(IIWA_LIKE, q)[0] @ qd[0]
        return float(kin + potential_energy(IIWA_LIKE, q)[0])

    q, qd, qdd = state(t0)
    power = float(inverse_dynamics(IIWA_LIKE, q, qd, qdd, friction=False)[0] @ qd[0])
    d_energy = (energy(t0 + h) - energy(t0 - h)) / (2 * h)
    assert abs(power) > 1.0
    assert math.isclose(power, d_energy, rel_tol=1e-6, abs_tol=1e-6)


def test_newton_euler_agrees_with_euler_lagrange() -> None:
    """τ = M q̈ + Ṁ q̇ − ½ ∇_q(q̇ᵀ M q̇) + ∇V, every term from M(q) and V(q) by finite
    differences: catches velocity terms that do no work (gyroscopic ω × Iω), unlike power."""
    g = np.random.default_rng(6)
    q, qd, qdd = (g.uniform(-1.5, 1.5, (1, 7)) for _ in range(3))
    h = 1e-5

    def d_mass(k: int) -> np.ndarray:
        e = h * np.eye(7)[k]
        return (mass_matrix(IIWA_LIKE, q + e)[0] - mass_matrix(IIWA_LIKE, q - e)[0]) / (2 * h)

    dm = [d_mass(k) for k in range(7)]
    m_dot = sum(dm[k] * qd[0, k] for k in range(7))
    half_grad = np.array([0.5 * qd[0] @ dm[j] @ qd[0] for j in range(7)])
    grad_v = np.array([(potential_energy(IIWA_LIKE, q + h * e)[0]
                        - potential_energy(IIWA_LIKE, q - h * e)[0]) / (2 * h)
                       for e in np.eye(7)])
    lagrange = mass_matrix(IIWA_LIKE, q)[0] @ qdd[0] + m_dot @ qd[0] - half_grad + grad_v
    rnea = inverse_dynamics(IIWA_LIKE, q, qd, qdd, friction=False)[0]
    assert np.allclose(rnea, lagrange, atol=1e-6)


def test_viscous_friction_term() -> None:
    g = np.random.default_rng(3)
    q, qd, qdd = (g.uniform(-1, 1, (4, 7)) for _ in range(3))
    diff = inverse_dynamics(IIWA_LIKE, q, qd, qdd) - inverse_dynamics(
        IIWA_LIKE, q, qd, qdd, friction=False)
    assert np.allclose(diff, IIWA_LIKE.viscous * qd, atol=1e-12)


def test_trajectories_consistent_and_within_limits() -> None:
    rate = 1000.0
    q, qd, qdd = sample_trajectories(IIWA_LIKE, np.random.default_rng(4), 3000, rate_hz=rate,
                                     duration_s=1.0)
    assert q.shape == qd.shape == qdd.shape == (3000, 7)
    inner = slice(1, 999)  # central differences inside the first trajectory
    fd_q = (q[2:1000] - q[:998]) * rate / 2
    fd_qd = (qd[2:1000] - qd[:998]) * rate / 2
    assert np.allclose(fd_q, qd[inner], atol=1e-4)
    assert np.allclose(fd_qd, qdd[inner], atol=1e-4)
    assert np.all(np.abs(q) <= IIWA_LIKE.q_limit)
    q_all, _, _ = sample_trajectories(IIWA_LIKE, np.random.default_rng(5), 20000)
    assert np.all(np.abs(q_all) <= IIWA_LIKE.q_limit)


# --- robot-dynamics: the data set --------------------------------------------------------------

def test_robot_dynamics_default_sizes_like_sarcos() -> None:
    tr = data.load("robot-dynamics", "train")
    te = data.load("robot-dynamics", "test")
    assert tr.x.shape == (44484, 21) and tr.y.shape == (44484, 7)
    assert te.x.shape == (4449, 21) and te.y.shape == (4449, 7) and te.task == "regression"
    assert np.allclose(tr.y.mean(0).numpy(), 0, atol=1e-5)
    assert np.allclose(tr.y.std(0, unbiased=False).numpy(), 1, atol=1e-4)
    assert torch.equal(te.target_mean, tr.target_mean) and "SARCOS" in tr.source


def test_robot_dynamics_rows_are_the_model() -> None:
    ds = data.load("robot-dynamics", "test", seed=7, n_train=2000, n_test=500)
    x = ds.x.double().numpy()
    tau = inverse_dynamics(IIWA_LIKE, x[:, :7], x[:, 7:14], x[:, 14:])
    physical = ds.y.double() * ds.target_std.double() + ds.target_mean.double()
    assert np.allclose(physical.numpy(), tau, rtol=1e-4, atol=1e-3)
    raw = data.load("robot-dynamics", "test", seed=7, n_train=2000, n_test=500,
                    scale_targets=False, friction=False)
    assert raw.target_mean is None
    assert np.allclose(raw.y.double().numpy(),
                       inverse_dynamics(IIWA_LIKE, x[:, :7], x[:, 7:14], x[:, 14:],
                                        friction=False), rtol=1e-4, atol=1e-3)


def test_robot_dynamics_deterministic_per_seed() -> None:
    kw = {"n_train": 1500, "n_test": 300}
    a = data.load("robot-dynamics", "train", seed=1, **kw)
    assert _same(a, data.load("robot-dynamics", "train", seed=1, **kw))
    assert not _same(a, data.load("robot-dynamics", "train", seed=2, **kw))
    te = data.load("robot-dynamics", "test", seed=1, **kw)
    assert not torch.equal(te.x[:300], a.x[:300])  # independent trajectories
    noisy = data.load("robot-dynamics", "train", seed=1, noise_std=0.5, **kw)
    assert torch.equal(noisy.x, a.x) and not torch.equal(noisy.y, a.y)
    std = data.load("robot-dynamics", "train", seed=1, standardize=True, **kw)
    assert np.allclose(std.x.std(0, unbiased=False).numpy(), 1, atol=1e-4)


def test_robot_model_documented() -> None:
    assert robot.IIWA_LIKE.n == 7 and robot.SARCOS_N_TRAIN == 44484
    assert np.allclose(IIWA_LIKE.d.sum(), 1.306)
    assert "stand-in for SARCOS" in (robot.__doc__ or "")
