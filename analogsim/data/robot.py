"""``robot-dynamics``: inverse dynamics of a 7-joint arm, a generated stand-in for SARCOS.

SARCOS (inverse dynamics of a 7-DoF SARCOS anthropomorphic arm: 21 inputs, 7 torques;
44,484 train / 4,449 test rows) cannot be obtained on machines without internet access, so
this set reproduces its *shape and kind*, not its numbers: 21 inputs ``[q, q̇, q̈]`` (rad,
rad/s, rad/s²) → 7 joint torques (N·m), from a rigid-body model of a KUKA-iiwa-like arm.

Model (``IIWA_LIKE``), standard Denavit–Hartenberg, all joints revolute, base frame z up:

====  =======  ======  ======  ========  =====================================
link  d (m)    a (m)   α       mass (kg) body (uniform solid cylinder, r × len)
====  =======  ======  ======  ========  =====================================
1     0.360    0       −π/2    4.0       r 0.07 × 0.360, along the link
2     0        0       +π/2    4.0       r 0.07 × 0.200, housing above joint 2
3     0.420    0       +π/2    3.0       r 0.06 × 0.420, along the link
4     0        0       −π/2    2.7       r 0.06 × 0.200, housing above joint 4
5     0.400    0       −π/2    1.7       r 0.05 × 0.400, along the link
6     0        0       +π/2    1.8       r 0.05 × 0.120, housing above joint 6
7     0.126    0       0       0.3       r 0.04 × 0.126, flange
====  =======  ======  ======  ========  =====================================

The link lengths are those of a LBR iiwa 14 R820 (0.36 + 0.42 + 0.40 + 0.126 m); masses are
rounded and bodies are idealised cylinders, so the torques are iiwa-*like*, not iiwa's. Link
``i``'s centre of mass sits on the arm's centre line: midway along its own segment for links
1, 3, 5, 7, and a short way (the housing's half length) along the next segment for 2, 4, 6.
Gravity is 9.81 m/s² along −z of the base; optional viscous friction ``τ_f = b q̇``.

Inverse dynamics is the recursive Newton–Euler algorithm (outward pass: angular velocity and
acceleration, linear acceleration of each frame and centre of mass; inward pass: forces and
moments), written in each link's own frame and vectorised over samples (numpy, float64).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from analogsim.data.dataset import Raw
from analogsim.data.generated import nonnegative, positive_int, rng

N_JOINTS = 7
GRAVITY = 9.81
SARCOS_N_TRAIN = 44484
SARCOS_N_TEST = 4449
RATE_HZ = 100.0  # sampling rate of the generated trajectories
DURATION_S = 10.0  # length of one trajectory: 1000 rows


@dataclass(frozen=True, eq=False)
class ArmModel:
    """A serial arm of revolute joints in standard DH form (arrays are float64, per link).

    Attributes:
        d, a, alpha: DH offsets (m), lengths (m) and twists (rad), shape ``(n,)``.
        mass: link masses (kg) ``(n,)``.
        com: centre of mass of link i in frame i (m) ``(n, 3)``.
        inertia: inertia tensor of link i about its centre of mass, in frame i (kg·m²)
            ``(n, 3, 3)``.
        viscous: viscous friction per joint (N·m·s/rad) ``(n,)``.
        q_limit: symmetric joint limits (rad) ``(n,)``, used by the trajectory sampler.
    """

    d: np.ndarray
    a: np.ndarray
    alpha: np.ndarray
    mass: np.ndarray
    com: np.ndarray
    inertia: np.ndarray
    viscous: np.ndarray
    q_limit: np.ndarray

    @property
    def n(self) -> int:
        return int(self.d.shape[0])

    def offsets(self) -> np.ndarray:
        """``r_i``: origin of frame i relative to frame i−1, in frame i (m) ``(n, 3)``."""
        return np.stack([self.a, self.d * np.sin(self.alpha), self.d * np.cos(self.alpha)], 1)


def cylinder_inertia(mass: float, radius: float, length: float, axis: int) -> np.ndarray:
    """Inertia ``(3, 3)`` (kg·m²) of a uniform solid cylinder about its centre, long axis
    along coordinate ``axis`` (0 = x, 1 = y, 2 = z)."""
    transverse = mass * (3 * radius**2 + length**2) / 12
    diag = np.full(3, transverse)
    diag[axis] = mass * radius**2 / 2
    return np.diag(diag)


def _iiwa_like() -> ArmModel:
    d = np.array([0.360, 0.0, 0.420, 0.0, 0.400, 0.0, 0.126])
    alpha = np.array([-1, 1, 1, -1, -1, 1, 0]) * (math.pi / 2)
    mass = np.array([4.0, 4.0, 3.0, 2.7, 1.7, 1.8, 0.3])
    radius = np.array([0.07, 0.07, 0.06, 0.06, 0.05, 0.05, 0.04])
    length = np.array([0.360, 0.200, 0.420, 0.200, 0.400, 0.120, 0.126])
    r = np.stack([np.zeros(7), d * np.sin(alpha), d * np.cos(alpha)], 1)
    com = np.zeros((7, 3))
    inertia = np.zeros((7, 3, 3))
    for i in range(7):
        if d[i] > 0:  # body along its own segment, from frame i−1's origin to frame i's
            com[i] = -0.5 * r[i]
            axis = int(np.argmax(np.abs(r[i])))
        else:  # housing reaching along the next segment, i.e. +z of frame i
            com[i] = [0.0, 0.0, 0.5 * length[i]]
            axis = 2
        inertia[i] = cylinder_inertia(mass[i], radius[i], length[i], axis)
    return ArmModel(
        d=d, a=np.zeros(7), alpha=alpha, mass=mass, com=com, inertia=inertia,
        viscous=np.array([0.8, 0.8, 0.5, 0.5, 0.3, 0.2, 0.1]),
        q_limit=np.radians([170, 120, 170, 120, 170, 120, 175]))


#: The arm used by ``robot-dynamics`` (see the module docstring for its parameters).
IIWA_LIKE = _iiwa_like()


def _rotations(model: ArmModel, q: np.ndarray) -> np.ndarray:
    """``R_i`` ``(N, n, 3, 3)``: orientation of frame i in frame i−1, ``Rz(q_i) Rx(α_i)``."""
    cq, sq = np.cos(q), np.sin(q)
    ca, sa = np.cos(model.alpha), np.sin(model.alpha)
    rot = np.empty((*q.shape, 3, 3))
    rot[..., 0, 0], rot[..., 0, 1], rot[..., 0, 2] = cq, -sq * ca, sq * sa
    rot[..., 1, 0], rot[..., 1, 1], rot[..., 1, 2] = sq, cq * ca, -cq * sa
    rot[..., 2, 0], rot[..., 2, 1], rot[..., 2, 2] = 0.0, sa, ca
    return rot


def _joint_array(model: ArmModel, v: np.ndarray, what: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != model.n:
        raise ValueError(f"{what} must be (N, {model.n}), got {v.shape}")
    return v


def inverse_dynamics(model: ArmModel, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray, *,
                     gravity: float = GRAVITY, friction: bool = True) -> np.ndarray:
    """Joint torques (N·m) ``(N, n)`` that produce accelerations ``qdd`` (rad/s²) at positions
    ``q`` (rad) and velocities ``qd`` (rad/s), each ``(N, n)``; recursive Newton–Euler.

    ``gravity`` (m/s², along −z of the base) may be 0 to get the inertial terms alone;
    ``friction`` adds ``model.viscous * qd``.
    """
    q, qd, qdd = (_joint_array(model, v, w) for v, w in ((q, "q"), (qd, "qd"), (qdd, "qdd")))
    n_s, n = q.shape
    rot = _rotations(model, q)
    rot_t = np.swapaxes(rot, -1, -2)
    r, c = model.offsets(), model.com
    z = np.array([0.0, 0.0, 1.0])

    w = np.zeros((n_s, 3))
    wd = np.zeros((n_s, 3))
    pdd = np.tile([0.0, 0.0, gravity], (n_s, 1))  # base acceleration −g: gravity as inertia
    ws, wds, pcdds = [], [], []
    for i in range(n):
        w_prev = w
        w = np.einsum("nij,nj->ni", rot_t[:, i], w_prev + qd[:, i:i + 1] * z)
        wd = np.einsum("nij,nj->ni", rot_t[:, i],
                       wd + qdd[:, i:i + 1] * z + qd[:, i:i + 1] * np.cross(w_prev, z))
        pdd = (np.einsum("nij,nj->ni", rot_t[:, i], pdd)
               + np.cross(wd, r[i]) + np.cross(w, np.cross(w, r[i])))
        ws.append(w)
        wds.append(wd)
        pcdds.append(pdd + np.cross(wd, c[i]) + np.cross(w, np.cross(w, c[i])))

    tau = np.empty((n_s, n))
    f = np.zeros((n_s, 3))
    mu = np.zeros((n_s, 3))
    for i in reversed(range(n)):
        if i + 1 < n:  # force and moment of link i+1, expressed in frame i
            f_next = np.einsum("nij,nj->ni", rot[:, i + 1], f)
            mu_next = np.einsum("nij,nj->ni", rot[:, i + 1], mu)
        else:
            f_next = np.zeros((n_s, 3))
            mu_next = np.zeros((n_s, 3))
        inertia = model.inertia[i]
        f = f_next + model.mass[i] * pcdds[i]
        mu = (-np.cross(f, r[i] + c[i]) + mu_next + np.cross(f_next, c[i])
              + wds[i] @ inertia.T + np.cross(ws[i], ws[i] @ inertia.T))
        tau[:, i] = np.einsum("ni,ni->n", mu, rot[:, i, 2, :])  # axis z_{i−1} in frame i
    if friction:
        tau += model.viscous * qd
    return tau


def forward_kinematics(model: ArmModel, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orientation ``(N, n, 3, 3)`` and origin ``(N, n, 3)`` (m) of every link frame in the
    base frame."""
    q = _joint_array(model, q, "q")
    rot = _rotations(model, q)
    r = model.offsets()
    orient = np.empty_like(rot)
    origin = np.empty((*q.shape, 3))
    cur_r = np.broadcast_to(np.eye(3), (q.shape[0], 3, 3))
    cur_p = np.zeros((q.shape[0], 3))
    for i in range(model.n):
        cur_r = cur_r @ rot[:, i]
        cur_p = cur_p + cur_r @ r[i]
        orient[:, i], origin[:, i] = cur_r, cur_p
    return orient, origin


def potential_energy(model: ArmModel, q: np.ndarray, gravity: float = GRAVITY) -> np.ndarray:
    """Gravitational potential energy (J) ``(N,)``, zero at base height."""
    orient, origin = forward_kinematics(model, q)
    com_height = origin[..., 2] + np.einsum("nkj,kj->nk", orient[..., 2, :], model.com)
    return gravity * com_height @ model.mass


def mass_matrix(model: ArmModel, q: np.ndarray) -> np.ndarray:
    """Joint-space inertia matrix ``M(q)`` (kg·m²) ``(N, n, n)``: column j is the torque that
    unit acceleration of joint j needs at rest without gravity or friction."""
    q = _joint_array(model, q, "q")
    n_s, n = q.shape
    eye = np.eye(n)
    cols = [inverse_dynamics(model, q, np.zeros_like(q), np.tile(eye[j], (n_s, 1)),
                             gravity=0.0, friction=False) for j in range(n)]
    return np.stack(cols, axis=2)


def sample_trajectories(model: ArmModel, g: np.random.Generator, n_rows: int, *,
                        rate_hz: float = 100.0, duration_s: float = 10.0,
                        n_harmonics: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth joint trajectories at ``rate_hz``: ``q``, ``q̇``, ``q̈``, each ``(n_rows, n)``.

    Each trajectory lasts ``duration_s``; joint j follows ``c_j + Σ_k A_jk sin(ω_jk t + φ_jk)``
    with ``n_harmonics`` terms, frequencies 0.05–0.3 Hz, total amplitude 20–60 % of the joint
    limit and the centre chosen so that ``|q_j|`` stays within it; ``q̇`` and ``q̈`` are the
    exact derivatives. Rows of all trajectories are concatenated, then cut to ``n_rows``.
    """
    per = max(1, int(round(rate_hz * duration_s)))  # noqa: RUF046 - rate may be a numpy float
    n_traj = -(-n_rows // per)
    n = model.n
    t = np.arange(per) / rate_hz
    shape = (n_traj, n, n_harmonics)
    omega = 2 * math.pi * g.uniform(0.05, 0.3, shape)
    phase = g.uniform(0.0, 2 * math.pi, shape)
    split = g.dirichlet(np.ones(n_harmonics), (n_traj, n))
    amp = split * (g.uniform(0.2, 0.6, (n_traj, n)) * model.q_limit)[..., None]
    room = model.q_limit - amp.sum(-1)
    centre = g.uniform(-1.0, 1.0, (n_traj, n)) * room
    arg = omega[..., None] * t + phase[..., None]  # (traj, joint, harmonic, time)
    q = centre[..., None] + np.einsum("tjh,tjhs->tjs", amp, np.sin(arg))
    qd = np.einsum("tjh,tjhs->tjs", amp * omega, np.cos(arg))
    qdd = -np.einsum("tjh,tjhs->tjs", amp * omega**2, np.sin(arg))

    def flat(v: np.ndarray) -> np.ndarray:
        return np.swapaxes(v, 1, 2).reshape(-1, n)[:n_rows]

    return flat(q), flat(qd), flat(qdd)


@functools.lru_cache(maxsize=4)
def _simulate(seed: int, split: str, n_rows: int, friction: bool, noise_std: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffled inputs ``(n_rows, 21)``, torques ``(n_rows, 7)`` and each row's trajectory
    index ``(n_rows,)`` of one split (read-only)."""
    g = rng(seed, "robot-dynamics", split)
    q, qd, qdd = sample_trajectories(IIWA_LIKE, g, n_rows, rate_hz=RATE_HZ,
                                     duration_s=DURATION_S)
    tau = inverse_dynamics(IIWA_LIKE, q, qd, qdd, friction=friction)
    tau += noise_std * g.standard_normal(tau.shape)
    order = g.permutation(n_rows)
    x, y = np.concatenate([q, qd, qdd], axis=1)[order], tau[order]
    traj = (np.arange(n_rows) // round(RATE_HZ * DURATION_S))[order]
    for a in (x, y, traj):
        a.flags.writeable = False
    return x, y, traj


def robot_dynamics(split: str, seed: int, *, n_train: int = SARCOS_N_TRAIN,
                   n_test: int = SARCOS_N_TEST, friction: bool = True, noise_std: float = 0.0,
                   scale_targets: bool = True) -> Raw:
    """Inputs ``[q, q̇, q̈]`` float32 ``(N, 21)`` and torques ``(N, 7)``.

    Train and test rows come from independent trajectories (streams of ``seed``), then are
    shuffled; ``groups`` holds each row's trajectory, so that a validation split carved from
    the train rows takes whole trajectories (rows 10 ms apart are near copies). ``noise_std``
    (N·m) adds Gaussian torque noise. With ``scale_targets`` each torque is standardised with
    the train split's mean and std (kept in ``target_mean`` / ``target_std``), else ``y`` is
    in N·m.
    """
    noise = nonnegative("noise_std", noise_std)
    n = positive_int("n_train", n_train) if split == "train" else positive_int("n_test", n_test)
    x, tau, traj = _simulate(seed, split, n, bool(friction), noise)
    source = (f"generated (7-joint iiwa-like arm, recursive Newton-Euler, SARCOS stand-in, "
              f"seed={seed})")
    if not scale_targets:
        return Raw(x=x.astype(np.float32), targets=tau.astype(np.float32), source=source,
                   groups=traj)
    _, tau_train, _ = _simulate(seed, "train", positive_int("n_train", n_train), bool(friction),
                             noise)
    mean, std = tau_train.mean(axis=0), tau_train.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return Raw(x=x.astype(np.float32), targets=((tau - mean) / std).astype(np.float32),
               source=source, target_mean=mean.astype(np.float32),
               target_std=std.astype(np.float32), groups=traj)
