"""UR arm kinematics in plain Python: forward kinematics from UR's published DH parameters,
a damped least-squares inverse, and rotation-vector helpers (poses are x, y, z, rx, ry, rz).

Used by the simulator to report actual_TCP_pose and follow movel, and by the driver to compare
poses within a tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Matrix = list[list[float]]  # 3x3 rotation
Pose = tuple[float, float, float, float, float, float]

# UR5e DH parameters (UR's "DH parameters for calculations of kinematics and dynamics").
UR5E_D = (0.1625, 0.0, 0.0, 0.1333, 0.0997, 0.0996)
UR5E_A = (0.0, -0.425, -0.3922, 0.0, 0.0, 0.0)
UR5E_ALPHA = (math.pi / 2, 0.0, 0.0, math.pi / 2, -math.pi / 2, 0.0)


def _matmul(a: Matrix, b: Matrix) -> Matrix:
    return [[a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j] for j in range(3)] for i in range(3)]


def _transpose(m: Matrix) -> Matrix:
    return [[m[j][i] for j in range(3)] for i in range(3)]


def forward(q: Sequence[float]) -> tuple[list[float], Matrix]:
    """TCP position and rotation matrix of joint positions q (standard DH: Rz(q) Tz(d) Tx(a) Rx(alpha))."""
    rot: Matrix = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    pos = [0.0, 0.0, 0.0]
    for theta, d, a, alpha in zip(q, UR5E_D, UR5E_A, UR5E_ALPHA, strict=True):
        ct, st, ca, sa = math.cos(theta), math.sin(theta), math.cos(alpha), math.sin(alpha)
        link = [[ct, -st * ca, st * sa], [st, ct * ca, -ct * sa], [0.0, sa, ca]]
        offset = (a * ct, a * st, d)
        pos = [
            pos[i] + rot[i][0] * offset[0] + rot[i][1] * offset[1] + rot[i][2] * offset[2] for i in range(3)
        ]
        rot = _matmul(rot, link)
    return pos, rot


def matrix_to_rotvec(m: Matrix) -> tuple[float, float, float]:
    """Rotation matrix -> rotation vector (axis * angle, angle in [0, pi])."""
    cos_angle = max(-1.0, min(1.0, (m[0][0] + m[1][1] + m[2][2] - 1.0) / 2.0))
    angle = math.acos(cos_angle)
    if angle < 1e-9:
        return (0.0, 0.0, 0.0)
    if math.pi - angle < 1e-6:
        # Near 180 degrees the skew part vanishes; take the axis from the diagonal.
        axis = [math.sqrt(max(0.0, (m[i][i] + 1.0) / 2.0)) for i in range(3)]
        k = max(range(3), key=lambda i: axis[i])
        for i in range(3):
            if i != k and m[k][i] + m[i][k] < 0:
                axis[i] = -axis[i]
        return (axis[0] * angle, axis[1] * angle, axis[2] * angle)
    scale = angle / (2.0 * math.sin(angle))
    return (scale * (m[2][1] - m[1][2]), scale * (m[0][2] - m[2][0]), scale * (m[1][0] - m[0][1]))


def rotvec_to_matrix(rv: Sequence[float]) -> Matrix:
    """Rotation vector -> rotation matrix (Rodrigues)."""
    angle = math.hypot(rv[0], rv[1], rv[2])  # no overflow for large components, unlike the squares
    if angle < 1e-12:
        return [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    x, y, z = (v / angle for v in rv)
    c, s = math.cos(angle), math.sin(angle)
    t = 1.0 - c
    return [
        [t * x * x + c, t * x * y - s * z, t * x * z + s * y],
        [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
        [t * x * z - s * y, t * y * z + s * x, t * z * z + c],
    ]


def pose_of(q: Sequence[float]) -> Pose:
    """TCP pose (x, y, z, rx, ry, rz) of joint positions q."""
    pos, rot = forward(q)
    rx, ry, rz = matrix_to_rotvec(rot)
    return (pos[0], pos[1], pos[2], rx, ry, rz)


def rotation_angle(rv_a: Sequence[float], rv_b: Sequence[float]) -> float:
    """Angle (rad) of the rotation taking orientation a to orientation b."""
    relative = _matmul(rotvec_to_matrix(rv_b), _transpose(rotvec_to_matrix(rv_a)))
    return math.acos(max(-1.0, min(1.0, (relative[0][0] + relative[1][1] + relative[2][2] - 1.0) / 2.0)))


def pose_error(pose: Sequence[float], target: Sequence[float]) -> tuple[float, float]:
    """(position distance in m, orientation angle in rad) between two poses."""
    return math.dist(pose[:3], target[:3]), rotation_angle(pose[3:], target[3:])


def _task_error(pos: list[float], rot: Matrix, t_pos: Sequence[float], t_rot: Matrix) -> list[float]:
    rotation = matrix_to_rotvec(_matmul(t_rot, _transpose(rot)))
    return [t_pos[0] - pos[0], t_pos[1] - pos[1], t_pos[2] - pos[2], *rotation]


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Solve a small dense linear system by Gaussian elimination with partial pivoting."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            for c in range(col, n + 1):
                m[r][c] -= f * m[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


def inverse(
    target: Sequence[float],
    seed: Sequence[float],
    iterations: int = 200,
    tolerance: float = 1e-7,
    damping: float = 0.01,
) -> list[float] | None:
    """Joint positions reaching pose `target`, starting from `seed`; None when it does not converge."""
    t_pos, t_rot = target[:3], rotvec_to_matrix(target[3:])
    q = list(seed)
    for _ in range(iterations):
        pos, rot = forward(q)
        error = _task_error(pos, rot, t_pos, t_rot)
        if max(abs(e) for e in error) < tolerance:
            return q
        jacobian_t = []  # rows: d(error)/dq_j, by finite differences
        for j in range(6):
            probe = list(q)
            probe[j] += 1e-6
            p_pos, p_rot = forward(probe)
            shifted = _task_error(p_pos, p_rot, t_pos, t_rot)
            jacobian_t.append([(error[i] - shifted[i]) / 1e-6 for i in range(6)])
        jjt = [
            [
                sum(jacobian_t[k][i] * jacobian_t[k][j] for k in range(6)) + (damping**2 if i == j else 0.0)
                for j in range(6)
            ]
            for i in range(6)
        ]
        x = _solve(jjt, error)
        q = [q[j] + sum(jacobian_t[j][i] * x[i] for i in range(6)) for j in range(6)]
    return None
