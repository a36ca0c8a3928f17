"""Mach-Zehnder interferometer (MZI) meshes: unitary layers, U Sigma V^dagger weights, hybrid networks.

An N x N mesh of 2 x 2 MZIs, each built from two 50:50 directional couplers and two phase
shifters, realises any N x N unitary. Two arrangements are provided:

* **Clements** (Clements et al., "Optimal design for universal multiport interferometers",
  Optica 3, 1460 (2016)): a rectangular grid of N columns, N(N-1)/2 MZIs. An inner mode line
  crosses N MZIs, but the two edge modes sit out every other column and cross about N/2
  (N = 8: 4, 8, 8, 8, 8, 8, 8, 4), so light routed along an edge loses less: loss is
  nearly, not exactly, balanced.
* **Reck** (Reck et al., "Experimental realization of any discrete unitary operator",
  Phys. Rev. Lett. 73, 58 (1994)): a triangle of depth 2N-3 with the same MZI count; mode
  lines cross between 1 and 2N-3 MZIs, so loss is unbalanced.

Loss is per MZI (``mesh_unitary``'s ``mzi_loss_db`` on both outputs of each), so each path
through a mesh is attenuated by the MZIs it actually crosses
(:meth:`MeshLayout.mzis_per_mode` counts them per mode line); a receiver calibrates its gain
per output with :func:`row_transmission`, not for the full depth.

One MZI on modes (m, m+1), light entering from the left, is

    T(theta, phi) = B(alpha2) . P(theta) . B(alpha1) . P(phi),
    B(alpha) = [[cos(pi/4 + alpha), i sin(pi/4 + alpha)], [i sin(pi/4 + alpha), cos(pi/4 + alpha)]],
    P(x) = diag(exp(i x), 1),

with ``phi`` the external and ``theta`` the internal phase shifter (both on the upper arm)
and ``alpha`` a coupler's deviation from 50:50 (zero when ideal). Ideally
``T = i exp(i theta/2) [[exp(i phi) sin(theta/2), cos(theta/2)], [exp(i phi) cos(theta/2), -sin(theta/2)]]``.
A column of output phase shifters ``D = diag(exp(i out_phase))`` follows the last MZI.

A general M x N weight is realised as ``W = U Sigma V^dagger`` (Miller, "Self-configuring
universal linear optical component", Photon. Res. 1, 1 (2013); Shen et al., "Deep learning with
coherent nanophotonic circuits", Nat. Photon. 11, 441 (2017)): an N-mode mesh, a column of
min(M, N) MZI attenuators (transmission ``sin(theta_s / 2)`` <= 1, the other port dumped), and an
M-mode mesh. The functional core (``mzi_transfer``, ``mesh_unitary``, ``decompose``) takes the
phases (and any coupler errors or losses) explicitly, so a simulator can apply non-idealities
without touching the modules. Decomposition follows the nulling procedures of the two papers,
written from their equations; the mesh is evaluated in blocks of columns multiplied in a tree,
which keeps the number of autograd operations at about ``block + log2(N / block)`` per mesh.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from functools import cached_property, lru_cache

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nonvon.errors import ConfigError

__all__ = [
    "MeshLayout", "mesh_layout", "MeshPhases", "mzi_transfer", "mesh_unitary", "decompose",
    "reconstruct", "MZIMesh", "SVDLayer", "HybridMZINetwork", "ARRANGEMENTS", "row_transmission",
]

ARRANGEMENTS = ("clements", "reck")


def _check_modes(n: int, what: str = "n_modes") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"{what}={n!r} must be a positive integer",
                          f"a mesh needs at least one mode, e.g. {what}=8")
    return int(n)


def _check_arrangement(arrangement: str) -> str:
    if arrangement not in ARRANGEMENTS:
        raise ConfigError(f"unknown MZI arrangement {arrangement!r}",
                          f"use one of {', '.join(ARRANGEMENTS)}")
    return arrangement


# -- layout -------------------------------------------------------------------------------
def _nulling_sequence(n: int, arrangement: str) -> list[tuple[str, int, int, int]]:
    """The nulling steps of a decomposition: (side, m, row, col) with side 'R' or 'L'.

    'R': multiply from the right by T^-1 on columns (m, m+1), zeroing element (row, m).
    'L': multiply from the left by T on rows (m, m+1), zeroing element (m+1, col).
    The positions depend on ``n`` only, so the same sequence fixes the mesh layout.
    """
    steps: list[tuple[str, int, int, int]] = []
    if arrangement == "reck":
        for row in range(n - 1, 0, -1):
            for j in range(row):
                steps.append(("R", j, row, j))
        return steps
    # Clements et al. 2016, section 2 (0-based): alternate diagonals from the right and left.
    for i in range(n - 1):
        if i % 2 == 0:
            for j in range(i + 1):
                steps.append(("R", i - j, n - 1 - j, i - j))
        else:
            for j in range(i + 1):
                row = n - 1 - i + j
                steps.append(("L", row - 1, row, j))
    return steps


@dataclasses.dataclass(frozen=True, eq=False)
class MeshLayout:
    """Where each MZI sits: ``top[k]`` (upper mode) and ``col[k]`` (column), in light order.

    MZIs are listed in the order light meets them (the order of the phases in
    :class:`MeshPhases`); ``col`` is the earliest column each can occupy.
    """

    n_modes: int
    arrangement: str
    top: np.ndarray
    col: np.ndarray

    @cached_property
    def index(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(col, top)`` as torch tensors (cached)."""
        return torch.from_numpy(self.col.copy()), torch.from_numpy(self.top.copy())

    @cached_property
    def _index_by_device(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return {}

    def index_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """:attr:`index` on ``device``, copied there once: a copy from the host at every
        mesh evaluation would also stop a training step from being captured as a CUDA graph."""
        key = str(device)
        if key not in self._index_by_device:
            self._index_by_device[key] = tuple(i.to(device) for i in self.index)
        return self._index_by_device[key]

    @property
    def n_mzi(self) -> int:
        return len(self.top)

    @property
    def n_columns(self) -> int:
        return int(self.col.max()) + 1 if self.n_mzi else 0

    def mzis_per_mode(self) -> np.ndarray:
        """``(N,)`` the number of MZIs on each mode line: the loss, in units of one MZI's,
        of light that stays in that mode (a bar-state mesh)."""
        out = np.zeros(self.n_modes, dtype=np.int64)
        np.add.at(out, self.top, 1)
        np.add.at(out, self.top + 1, 1)
        return out

    @property
    def n_phase_shifters(self) -> int:
        """Two per MZI plus one output phase per mode."""
        return 2 * self.n_mzi + self.n_modes

    def neighbours(self) -> np.ndarray:
        """``(n_mzi, 2)`` indices of the MZIs directly above and below in the same column (-1: none).

        Adjacent MZIs of one column sit side by side on the chip, so their heaters couple
        thermally (the crosstalk model of the photonic simulator).
        """
        where = {(int(c), int(t)): k for k, (c, t) in enumerate(zip(self.col, self.top, strict=True))}
        out = np.full((self.n_mzi, 2), -1, dtype=np.int64)
        for k, (c, t) in enumerate(zip(self.col, self.top, strict=True)):
            out[k, 0] = where.get((int(c), int(t) - 2), -1)
            out[k, 1] = where.get((int(c), int(t) + 2), -1)
        return out


@lru_cache(maxsize=64)
def mesh_layout(n_modes: int, arrangement: str = "clements") -> MeshLayout:
    """The layout of an ``n_modes`` mesh in ``arrangement`` (``"clements"`` or ``"reck"``)."""
    n = _check_modes(n_modes)
    _check_arrangement(arrangement)
    steps = _nulling_sequence(n, arrangement)
    rights = [m for side, m, _, _ in steps if side == "R"]
    lefts = [m for side, m, _, _ in steps if side == "L"]
    order = rights + lefts[::-1]  # the left-side MZIs are met last, in reverse nulling order
    free = np.zeros(n + 1, dtype=np.int64)  # first free column per mode
    cols = []
    for m in order:
        c = max(free[m], free[m + 1])
        cols.append(c)
        free[m] = free[m + 1] = c + 1
    top = np.asarray(order, dtype=np.int64)
    col = np.asarray(cols, dtype=np.int64)
    top.flags.writeable = col.flags.writeable = False
    return MeshLayout(n, arrangement, top, col)


# -- one MZI and a whole mesh ------------------------------------------------------------
def mzi_transfer(theta, phi, alpha1=None, alpha2=None):
    """The 2 x 2 transfer matrix elements ``(t00, t01, t10, t11)`` of MZIs (element-wise).

    Args:
        theta, phi: internal and external phases (real tensors, radians, any shape).
        alpha1, alpha2: deviations of the first and second coupler from 50:50 (radians of
            splitting angle; ``None`` is ideal). ``sin^2(pi/4 + alpha)`` is the cross ratio.

    Returns:
        Four complex tensors of the broadcast shape.
    """
    theta = torch.as_tensor(theta)
    phi = torch.as_tensor(phi, dtype=theta.dtype)
    q = math.pi / 4
    if alpha1 is None:
        c1 = s1 = torch.full_like(theta, math.sqrt(0.5))
    else:
        c1, s1 = torch.cos(q + alpha1), torch.sin(q + alpha1)
    if alpha2 is None:
        c2 = s2 = torch.full_like(theta, math.sqrt(0.5))
    else:
        c2, s2 = torch.cos(q + alpha2), torch.sin(q + alpha2)
    e_t = torch.polar(torch.ones_like(theta), theta)
    e_p = torch.polar(torch.ones_like(phi), phi)
    e_tp = e_t * e_p
    j = 1j
    t00 = c2 * c1 * e_tp - s2 * s1 * e_p
    t01 = j * (c2 * s1 * e_t + s2 * c1)
    t10 = j * (s2 * c1 * e_tp + c2 * s1 * e_p)
    t11 = c2 * c1 - s2 * s1 * e_t
    return t00, t01, t10, t11


def _column_coefficients(layout: MeshLayout, t, n_cols: int, amp=None):
    """Per column, vectors (A, B, C) with ``x' = A x + B x[+1] + C x[-1]`` (see mesh_unitary)."""
    t00, t01, t10, t11 = t
    dtype = t00.dtype
    n = layout.n_modes
    dev = t00.device
    col, top = layout.index_on(dev)
    if amp is not None:
        t00, t01, t10, t11 = (amp * v for v in (t00, t01, t10, t11))
    a = torch.ones(n_cols, n, dtype=dtype, device=dev)
    b = torch.zeros(n_cols, n, dtype=dtype, device=dev)
    c = torch.zeros(n_cols, n, dtype=dtype, device=dev)
    a = a.index_put((col, top), t00).index_put((col, top + 1), t11)
    b = b.index_put((col, top), t01)
    c = c.index_put((col, top + 1), t10)
    return a, b, c


def mesh_unitary(layout: MeshLayout, theta: torch.Tensor, phi: torch.Tensor,
                 out_phase: torch.Tensor, *, alpha1: torch.Tensor | None = None,
                 alpha2: torch.Tensor | None = None, mzi_loss_db: float = 0.0,
                 block: int | None = None) -> torch.Tensor:
    """The N x N transfer matrix of a mesh (unitary when ideal and lossless).

    Args:
        layout: from :func:`mesh_layout`.
        theta, phi: ``(n_mzi,)`` phases in the layout's order.
        out_phase: ``(N,)`` output phase screen.
        alpha1, alpha2: optional ``(n_mzi,)`` coupler errors (see :func:`mzi_transfer`).
        mzi_loss_db: insertion loss of each MZI in dB (applied to both of its outputs).
        block: columns per block (default about N / 16 on a CPU, 1 on CUDA); only speed
            depends on it.

    Returns:
        complex ``(N, N)`` tensor ``U`` with ``y = U @ x`` for a column vector of mode amplitudes.
    """
    if mzi_loss_db < 0 or not math.isfinite(mzi_loss_db):
        raise ConfigError(f"mzi_loss_db={mzi_loss_db!r} must be a finite loss >= 0 dB",
                          "a passive component cannot add light; e.g. mzi_loss_db=0.1")
    n = layout.n_modes
    if theta.shape != (layout.n_mzi,) or phi.shape != (layout.n_mzi,) or out_phase.shape != (n,):
        raise ConfigError(f"phases of shapes {tuple(theta.shape)}, {tuple(phi.shape)}, "
                          f"{tuple(out_phase.shape)} do not fit a {n}-mode mesh with "
                          f"{layout.n_mzi} MZIs", "use MeshPhases from the same layout")
    cdtype = torch.complex128 if theta.dtype == torch.float64 else torch.complex64
    d = torch.polar(torch.ones_like(out_phase), out_phase).to(cdtype)
    if layout.n_mzi == 0:
        return torch.diag(d)
    amp = 10.0 ** (-mzi_loss_db / 20.0) if mzi_loss_db else None
    t = mzi_transfer(theta, phi, alpha1, alpha2)
    n_cols = layout.n_columns
    if block is None:
        # CPU: blocks of ~N/16 columns balance the sequential band updates against the dense
        # products (fastest of 2..32 at N = 64, 128, 256 on 2 CPU cores, one thread).
        # GPU: arithmetic is cheap and each small operation a kernel launch, so every column
        # becomes a dense matrix at once and a tree of batched products multiplies them
        # (at N = 128 about a quarter of the operations, counted on the CPU)
        block = 1 if theta.is_cuda else max(2, -(-n_cols // 16))
    n_blocks = -(-n_cols // block)
    a, b, c = _column_coefficients(layout, t, n_blocks * block, amp)
    # Each block (the product of `block` consecutive columns) has bandwidth <= block: a column
    # couples neighbouring modes only. Build blocks in band storage, band[b, i, d] =
    # M_b[i, i + d - w], then scatter them to dense for a tree of matrix products.
    w = block
    a = a.reshape(n_blocks, block, n, 1)
    b = b.reshape(n_blocks, block, n, 1)
    c = c.reshape(n_blocks, block, n, 1)
    dev = theta.device
    band = torch.zeros(n_blocks, n, 2 * w + 1, dtype=cdtype, device=dev)
    band[:, :, w] = 1
    for k in range(block):
        up = F.pad(band[:, 1:, :-1], (1, 0, 0, 1))    # M[i+1, j] in row i's band
        down = F.pad(band[:, :-1, 1:], (0, 1, 1, 0))  # M[i-1, j] in row i's band
        band = a[:, k] * band + b[:, k] * up + c[:, k] * down
    idx = (torch.arange(n, device=dev)[:, None] + torch.arange(2 * w + 1, device=dev)[None, :]).expand(
        n_blocks, n, 2 * w + 1)
    m = torch.zeros(n_blocks, n, n + 2 * w, dtype=cdtype, device=dev).scatter(2, idx, band)[:, :, w:w + n]
    while m.shape[0] > 1:  # tree product; later blocks multiply from the left
        if m.shape[0] % 2:
            m = torch.cat([m, torch.eye(n, dtype=cdtype, device=dev).unsqueeze(0)], dim=0)
        m = m[1::2] @ m[0::2]
    return d[:, None] * m[0]


def row_transmission(lossy: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per output (row), the amplitude transmission of ``lossy`` relative to ``reference``,
    the same programmed transfer matrix without loss: ``||lossy[j]|| / ||reference[j]||``.

    That is the gain calibration of a receiver that sends equal power into every input
    (random phases) and measures each output: it divides out the loss of the paths that
    actually reach output ``j``, where a gain set for the full mesh depth over-corrects the
    outputs fed by edge modes (Clements) or short paths (Reck). Rows the reference does not
    reach are 1.
    """
    num = lossy.abs().pow(2).sum(-1).sqrt()
    den = reference.abs().pow(2).sum(-1).sqrt()
    return torch.where(den > 0, num / torch.where(den > 0, den, 1), torch.ones_like(den))


@dataclasses.dataclass(frozen=True)
class MeshPhases:
    """Phases of a mesh in its layout's order (NumPy, radians)."""

    theta: np.ndarray
    phi: np.ndarray
    out_phase: np.ndarray
    layout: MeshLayout


def _t2(theta: float, phi: float) -> np.ndarray:
    s, c = math.sin(theta / 2), math.cos(theta / 2)
    ep = complex(math.cos(phi), math.sin(phi))
    return 1j * np.exp(1j * theta / 2) * np.array([[ep * s, c], [ep * c, -s]])


def _commute(t_inv: np.ndarray, d1: complex, d2: complex) -> tuple[float, float, complex, complex]:
    """Write ``t_inv @ diag(d1, d2)`` as ``diag(e1, e2) @ T(theta, phi)``."""
    mm = t_inv @ np.diag([d1, d2])
    s, c = abs(mm[0, 0]), abs(mm[0, 1])
    theta = 2 * math.atan2(s, c)
    ang_k = math.pi / 2 + theta / 2  # arg(i exp(i theta / 2))
    arg = np.angle
    if c >= s:
        phi = float(arg(mm[0, 0]) - arg(mm[0, 1]))
        e1 = np.exp(1j * (arg(mm[0, 1]) - ang_k))
        e2 = np.exp(1j * (arg(mm[1, 0]) - ang_k - phi))
    else:
        phi = float(arg(mm[1, 0]) - arg(mm[1, 1]) - math.pi)
        e1 = np.exp(1j * (arg(mm[0, 0]) - ang_k - phi))
        e2 = np.exp(1j * (arg(mm[1, 1]) - ang_k - math.pi))
    return theta, phi, e1, e2


def _check_unitary(u: np.ndarray, tol: float) -> np.ndarray:
    u = np.asarray(u)
    if u.ndim != 2 or u.shape[0] != u.shape[1] or u.shape[0] < 1:
        raise ConfigError(f"expected a square matrix, got shape {u.shape}",
                          "pass an N x N unitary")
    if not np.all(np.isfinite(u)):
        raise ConfigError("the matrix contains NaN or inf", "pass a finite unitary")
    u = u.astype(np.complex128)
    err = np.abs(u.conj().T @ u - np.eye(len(u))).max()
    if err > tol:
        raise ConfigError(f"the matrix is not unitary: max |U^dagger U - I| = {err:.2e} > {tol:g}",
                          "an MZI mesh realises only unitaries; for a general matrix use SVDLayer "
                          "(U Sigma V^dagger)")
    return u


def decompose(u, arrangement: str = "clements", *, tol: float = 1e-8) -> MeshPhases:
    """Phases of a mesh that realises the unitary ``u`` (Clements 2016 or Reck 1994 nulling).

    Args:
        u: ``(N, N)`` unitary (NumPy or torch, complex).
        arrangement: ``"clements"`` or ``"reck"``.
        tol: how far from unitary ``u`` may be (max abs of ``u^dagger u - I``).

    Returns:
        :class:`MeshPhases` with ``theta`` in [0, pi] and ``phi``, ``out_phase`` in (-pi, pi].

    Raises:
        ConfigError: ``u`` is not square, not finite or not unitary.

    Example:
        >>> from scipy.stats import unitary_group
        >>> u = unitary_group.rvs(6, random_state=0)
        >>> p = decompose(u, "clements")
        >>> bool(np.allclose(reconstruct(p), u, atol=1e-10))
        True
    """
    if isinstance(u, torch.Tensor):
        u = u.detach().cpu().numpy()
    _check_arrangement(arrangement)
    w = _check_unitary(u, tol).copy()
    n = len(w)
    layout = mesh_layout(n, arrangement)
    right: list[tuple[int, float, float]] = []
    left: list[tuple[int, float, float]] = []
    for side, m, row, col in _nulling_sequence(n, arrangement):
        if side == "R":  # zero w[row, m] by mixing columns m, m+1 with T^-1
            a, b = w[row, m], w[row, m + 1]
            theta = 2 * math.atan2(abs(b), abs(a))
            phi = float(np.angle(a) - np.angle(b) - math.pi)
            w[:, m:m + 2] = w[:, m:m + 2] @ _t2(theta, phi).conj().T
            right.append((m, theta, phi))
        else:  # zero w[m+1, col] by mixing rows m, m+1 with T
            a, b = w[m, col], w[m + 1, col]
            theta = 2 * math.atan2(abs(a), abs(b))
            phi = float(np.angle(b) - np.angle(a))
            w[m:m + 2, :] = _t2(theta, phi) @ w[m:m + 2, :]
            left.append((m, theta, phi))
    d = np.diag(w).copy()
    moved = []
    for m, theta, phi in reversed(left):  # T_L^-1 D = D' T'
        th2, ph2, e1, e2 = _commute(_t2(theta, phi).conj().T, d[m], d[m + 1])
        d[m], d[m + 1] = e1, e2
        moved.append((m, th2, ph2))
    seq = right + moved
    assert [m for m, _, _ in seq] == list(layout.top)
    wrap = lambda x: np.angle(np.exp(1j * np.asarray(x, dtype=np.float64)))  # noqa: E731
    return MeshPhases(theta=np.array([t for _, t, _ in seq], dtype=np.float64),
                      phi=wrap([p for _, _, p in seq]), out_phase=np.angle(d), layout=layout)


def reconstruct(p: MeshPhases) -> np.ndarray:
    """The unitary realised by ``p`` (complex128), evaluated by :func:`mesh_unitary`."""
    t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float64))  # noqa: E731
    return mesh_unitary(p.layout, t(p.theta), t(p.phi), t(p.out_phase)).numpy()


# -- modules -------------------------------------------------------------------------------
class MZIMesh(nn.Module):
    """A trainable N x N unitary as a mesh of MZIs.

    Args:
        n_modes: N.
        arrangement: ``"clements"`` or ``"reck"``.
        dtype: real dtype of the phases (``torch.float32`` or ``torch.float64``).

    Example:
        >>> mesh = MZIMesh(8)
        >>> u = mesh.unitary()
        >>> bool(torch.allclose(u.conj().T @ u, torch.eye(8, dtype=u.dtype), atol=1e-5))
        True
    """

    def __init__(self, n_modes: int, arrangement: str = "clements", *,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.layout = mesh_layout(_check_modes(n_modes), _check_arrangement(arrangement))
        k = self.layout.n_mzi
        self.theta = nn.Parameter(torch.empty(k, dtype=dtype))
        self.phi = nn.Parameter(torch.empty(k, dtype=dtype))
        self.out_phase = nn.Parameter(torch.empty(n_modes, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        # theta = 2 asin(sqrt(u)) makes the splitting ratio sin^2(theta/2) uniform in [0, 1]:
        # a balanced start, where uniform theta would favour near-bar and near-cross MZIs.
        with torch.no_grad():
            u = torch.rand(self.theta.shape, generator=generator, dtype=self.theta.dtype)
            self.theta.copy_(2 * torch.asin(torch.sqrt(u)))
            self.phi.uniform_(-math.pi, math.pi, generator=generator)
            self.out_phase.uniform_(-math.pi, math.pi, generator=generator)

    @property
    def n_modes(self) -> int:
        return self.layout.n_modes

    def set_unitary(self, u, tol: float = 1e-6) -> MZIMesh:
        """Program the mesh to realise ``u`` (via :func:`decompose`)."""
        p = decompose(u, self.layout.arrangement, tol=tol)
        with torch.no_grad():
            for name in ("theta", "phi", "out_phase"):
                getattr(self, name).copy_(torch.as_tensor(getattr(p, name)))
        return self

    def phases(self) -> MeshPhases:
        g = lambda t: t.detach().cpu().double().numpy().copy()  # noqa: E731
        return MeshPhases(g(self.theta), g(self.phi), g(self.out_phase), self.layout)

    def unitary(self) -> torch.Tensor:
        return mesh_unitary(self.layout, self.theta, self.phi, self.out_phase)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(..., N)`` complex amplitudes; returns ``(..., N)`` = ``x @ U^T``."""
        if x.shape[-1] != self.n_modes:
            raise ConfigError(f"input has {x.shape[-1]} modes; the mesh has {self.n_modes}",
                              "reshape the input or build the mesh with n_modes = input size")
        u = self.unitary()
        return x.to(u.dtype) @ u.T


class SVDLayer(nn.Module):
    """A general ``out x in`` weight ``W = U Sigma V^dagger`` with two meshes and attenuators.

    ``V^dagger`` is an ``in``-mode mesh; the first ``r = min(in, out)`` of its outputs pass MZI
    attenuators of amplitude transmission ``sigma_i = sin(theta_s_i / 2)`` in [0, 1] (the other
    outputs are dumped); the ``out``-mode mesh ``U`` takes them (and dark inputs where
    ``out > in``). Singular values are at most 1, as for any passive circuit; an electronic
    gain after detection restores the scale.

    Args:
        in_features, out_features: sizes (both >= 1).
        arrangement: ``"clements"`` or ``"reck"``.
    """

    def __init__(self, in_features: int, out_features: int, arrangement: str = "clements", *,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.in_features = _check_modes(in_features, "in_features")
        self.out_features = _check_modes(out_features, "out_features")
        self.rank = min(self.in_features, self.out_features)
        self.v = MZIMesh(self.in_features, arrangement, dtype=dtype)
        self.u = MZIMesh(self.out_features, arrangement, dtype=dtype)
        # start near full transmission, where gradients through sin(theta/2) are healthy
        self.theta_s = nn.Parameter(torch.full((self.rank,), 0.8 * math.pi, dtype=dtype))

    def sigma(self, theta_s: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sin((self.theta_s if theta_s is None else theta_s) / 2).abs()

    def matrix(self, v: torch.Tensor | None = None, u: torch.Tensor | None = None,
               sigma: torch.Tensor | None = None) -> torch.Tensor:
        """``(out, in)`` complex ``W``; pass perturbed ``v``, ``u``, ``sigma`` to override."""
        v = self.v.unitary() if v is None else v
        u = self.u.unitary() if u is None else u
        s = self.sigma() if sigma is None else sigma
        return (u[:, :self.rank] * s.to(u.dtype)) @ v[:self.rank, :]

    def set_matrix(self, w, *, tol: float = 1e-6) -> torch.Tensor:
        """Program the layer to realise ``w / scale`` (SVD then decomposition); returns ``scale``.

        ``scale`` is the largest singular value, so that every attenuator is passive.
        """
        w = torch.as_tensor(w).detach().cpu().to(torch.complex128)
        if tuple(w.shape) != (self.out_features, self.in_features):
            raise ConfigError(f"matrix of shape {tuple(w.shape)} does not fit a "
                              f"{self.out_features} x {self.in_features} layer",
                              "transpose it or build the layer with matching sizes")
        uu, s, vh = torch.linalg.svd(w)
        scale = s.max().clamp_min(1e-30)
        # full_matrices=True (the default): uu is out x out and vh in x in, both unitary
        self.u.set_unitary(uu.numpy(), tol=tol)
        self.v.set_unitary(vh.numpy(), tol=tol)
        with torch.no_grad():
            self.theta_s.copy_(2 * torch.asin((s[:self.rank] / scale).clamp(0, 1)))
        return scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ConfigError(f"input has {x.shape[-1]} features; the layer takes {self.in_features}",
                              "match in_features to the input size")
        w = self.matrix()
        return x.to(w.dtype) @ w.T


class HybridMZINetwork(nn.Module):
    """Optical linear layers (:class:`SVDLayer`) with electronic nonlinearity between them.

    Each layer: the input vector is encoded in field amplitudes, passes the mesh, and is read by
    coherent (homodyne) detection, which measures the real part of the output field; the
    electronics then apply a gain, a bias and (between layers) a ReLU:
    ``h = relu(g * Re(W x) + b)``.

    Args:
        sizes: ``(n_in, hidden..., n_out)``, at least two entries.
        arrangement: ``"clements"`` or ``"reck"``.
    """

    def __init__(self, sizes: Sequence[int], arrangement: str = "clements", *,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        sizes = tuple(sizes)
        if len(sizes) < 2:
            raise ConfigError(f"sizes={sizes} needs at least an input and an output size",
                              "e.g. sizes=(64, 128, 10)")
        for s in sizes:
            _check_modes(s, "layer size")
        self.sizes = sizes
        self.layers = nn.ModuleList(SVDLayer(a, b, arrangement, dtype=dtype)
                                    for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        # Kaiming-like start: Re of a random unitary entry has variance 1/(2 max(n_in, n_out))
        self.log_gain = nn.Parameter(torch.tensor(
            [math.log(2 * math.sqrt(max(a, b) / a)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)],
            dtype=dtype))
        self.bias = nn.ParameterList(nn.Parameter(torch.zeros(b, dtype=dtype)) for b in sizes[1:])

    def gains(self) -> torch.Tensor:
        return self.log_gain.exp()

    @torch.no_grad()
    def program(self, weights: Sequence, biases: Sequence) -> HybridMZINetwork:
        """Realise the MLP ``relu(W_1 x + b_1) ... W_L h + b_L`` exactly on the meshes.

        Each ``W_i`` goes through :meth:`SVDLayer.set_matrix` (SVD, then decomposition) and
        its largest singular value becomes the layer's electronic gain.
        """
        if len(weights) != len(self.layers) or len(biases) != len(self.layers):
            raise ConfigError(f"{len(weights)} weights and {len(biases)} biases for "
                              f"{len(self.layers)} layers",
                              "give one weight matrix and one bias per layer")
        for i, (layer, w, b) in enumerate(zip(self.layers, weights, biases, strict=True)):
            scale = layer.set_matrix(torch.as_tensor(w).double())
            self.log_gain[i] = math.log(float(scale))
            self.bias[i].copy_(torch.as_tensor(b))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(len(x), -1)
        g = self.gains()
        for i, layer in enumerate(self.layers):
            h = g[i] * layer(h).real + self.bias[i]
            if i < len(self.layers) - 1:
                h = torch.relu(h)
        return h
