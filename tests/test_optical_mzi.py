"""MZI meshes: unitarity, decomposition round trips, gradients, bad input (simulators/optical/mesh.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import unitary_group

from nonvon.errors import ConfigError
from nonvon.simulators.optical.mesh import (
    ARRANGEMENTS,
    HybridMZINetwork,
    MZIMesh,
    SVDLayer,
    decompose,
    mesh_layout,
    mesh_unitary,
    mzi_transfer,
    reconstruct,
)

T64 = torch.float64


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


@pytest.mark.parametrize("arrangement", ARRANGEMENTS)
@pytest.mark.parametrize("n", [2, 3, 8, 16])
def test_layout_counts(arrangement, n):
    lay = mesh_layout(n, arrangement)
    assert lay.n_mzi == n * (n - 1) // 2
    assert lay.n_columns == ((n if arrangement == "clements" else 2 * n - 3) if n > 2 else 1)
    # no two MZIs of one column share a mode
    for c in range(lay.n_columns):
        tops = lay.top[lay.col == c]
        assert len(set(tops) | set(tops + 1)) == 2 * len(tops)


def test_ideal_mzi_matches_closed_form():
    theta, phi = _t([0.3, 1.7, 3.0]), _t([-2.0, 0.4, 2.9])
    t00, t01, t10, t11 = mzi_transfer(theta, phi)
    s, c = torch.sin(theta / 2), torch.cos(theta / 2)
    k = 1j * torch.exp(1j * theta / 2)
    ep = torch.exp(1j * phi)
    for got, want in ((t00, k * ep * s), (t01, k * c), (t10, k * ep * c), (t11, -k * s)):
        torch.testing.assert_close(got, want, atol=1e-14, rtol=0)


@pytest.mark.parametrize("arrangement", ARRANGEMENTS)
@pytest.mark.parametrize("n", [1, 2, 5, 16, 33])
def test_mesh_is_unitary(arrangement, n):
    gen = torch.Generator().manual_seed(n)
    mesh = MZIMesh(n, arrangement, dtype=T64)
    mesh.reset_parameters(gen)
    u = mesh.unitary().detach()
    err = (u.conj().T @ u - torch.eye(n, dtype=u.dtype)).abs().max().item()
    assert err < 1e-6
    # float32: rounding grows with the depth of the mesh, so the tolerance scales with n
    mesh32 = MZIMesh(n, arrangement)
    u32 = mesh32.unitary().detach()
    assert (u32.conj().T @ u32 - torch.eye(n, dtype=u32.dtype)).abs().max().item() < 2e-6 * max(n, 4)


@pytest.mark.parametrize("arrangement", ARRANGEMENTS)
@pytest.mark.parametrize("n", [2, 5, 16])
def test_block_size_changes_speed_only(arrangement, n):
    """Blocks of 1 column (CUDA's default), a few, or all: the same matrix and gradients."""
    mesh = MZIMesh(n, arrangement, dtype=T64)
    mesh.reset_parameters(torch.Generator().manual_seed(n))
    runs = []
    for block in (1, 3, None, mesh.layout.n_columns):
        mesh.zero_grad()
        u = mesh_unitary(mesh.layout, mesh.theta, mesh.phi, mesh.out_phase, block=block)
        (u.real * torch.arange(n * n, dtype=T64).view(n, n)).sum().backward()
        runs.append((u.detach(), mesh.theta.grad.clone(), mesh.phi.grad.clone()))
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("arrangement", ARRANGEMENTS)
def test_imbalanced_couplers_stay_unitary_but_change_the_matrix(arrangement):
    n = 6
    lay = mesh_layout(n, arrangement)
    rng = np.random.default_rng(0)
    th, ph = _t(rng.uniform(0, math.pi, lay.n_mzi)), _t(rng.uniform(-3, 3, lay.n_mzi))
    out = _t(rng.uniform(-3, 3, n))
    a1, a2 = _t(rng.normal(0, 0.05, lay.n_mzi)), _t(rng.normal(0, 0.05, lay.n_mzi))
    ideal = mesh_unitary(lay, th, ph, out)
    bad = mesh_unitary(lay, th, ph, out, alpha1=a1, alpha2=a2)
    assert (bad.conj().T @ bad - torch.eye(n, dtype=bad.dtype)).abs().max() < 1e-12
    assert (bad - ideal).abs().max() > 1e-3


@pytest.mark.parametrize("arrangement", ARRANGEMENTS)
@pytest.mark.parametrize("n", [2, 3, 4, 7, 12, 20])
def test_decompose_round_trip(arrangement, n):
    u = unitary_group.rvs(n, random_state=100 + n)
    p = decompose(u, arrangement)
    assert p.theta.shape == (n * (n - 1) // 2,) and p.out_phase.shape == (n,)
    assert np.all((p.theta >= 0) & (p.theta <= math.pi + 1e-12))
    np.testing.assert_allclose(reconstruct(p), u, atol=1e-10, rtol=0)
    # through the module as well, in float64
    mesh = MZIMesh(n, arrangement, dtype=T64).set_unitary(u)
    np.testing.assert_allclose(mesh.unitary().detach().numpy(), u, atol=1e-10, rtol=0)


@pytest.mark.parametrize("arrangement", ARRANGEMENTS)
def test_decompose_special_matrices(arrangement):
    """Identity, a permutation and a diagonal hit the zero-amplitude branches of the nulling."""
    n = 5
    perm = np.eye(n)[[3, 0, 4, 1, 2]]
    diag = np.diag(np.exp(1j * np.arange(n)))
    for u in (np.eye(n), perm, diag, perm @ diag):
        np.testing.assert_allclose(reconstruct(decompose(u, arrangement)), u, atol=1e-10, rtol=0)


def test_clements_balances_loss_better_than_reck():
    """Per-input transmission spread (dB) with lossy MZIs is smaller in the rectangular mesh."""
    spread = {}
    for arr in ARRANGEMENTS:
        vals = []
        for seed in range(5):
            p = decompose(unitary_group.rvs(8, random_state=seed), arr)
            m = mesh_unitary(p.layout, _t(p.theta), _t(p.phi), _t(p.out_phase), mzi_loss_db=0.5)
            db = 10 * np.log10((m.abs() ** 2).sum(0).numpy())
            vals.append(db.max() - db.min())
        spread[arr] = np.mean(vals)
    assert spread["clements"] < spread["reck"]


def test_loss_scales_power_by_the_mzi_count():
    """A bar-state mesh (theta = pi: every MZI passes light straight through) loses exactly
    loss_db per MZI a mode crosses."""
    n = 4
    lay = mesh_layout(n, "clements")
    th = torch.full((lay.n_mzi,), math.pi, dtype=T64)
    m = mesh_unitary(lay, th, torch.zeros(lay.n_mzi, dtype=T64), torch.zeros(n, dtype=T64),
                     mzi_loss_db=0.25)
    crossed = np.zeros(n)
    for t in lay.top:
        crossed[[t, t + 1]] += 1
    np.testing.assert_allclose(10 * np.log10((m.abs() ** 2).sum(0).numpy()), -0.25 * crossed, atol=1e-12)


def test_gradient_matches_finite_difference():
    gen = torch.Generator().manual_seed(0)
    mesh = MZIMesh(5, dtype=T64)
    mesh.reset_parameters(gen)
    x = torch.randn(3, 5, dtype=torch.complex128, generator=gen)
    target = torch.randn(3, 5, dtype=torch.complex128, generator=gen)

    def loss() -> torch.Tensor:
        return (mesh(x) - target).abs().pow(2).sum()

    loss().backward()
    for name, k in (("theta", 4), ("phi", 2), ("out_phase", 1)):
        p = getattr(mesh, name)
        grad = p.grad[k].item()
        with torch.no_grad():
            p[k] += 1e-6
            up = loss().item()
            p[k] -= 2e-6
            down = loss().item()
            p[k] += 1e-6
        assert grad == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("shape", [(5, 7), (7, 5), (6, 6), (1, 4)])
def test_svd_layer_realises_a_given_matrix(shape):
    rng = np.random.default_rng(1)
    w = rng.normal(size=shape)
    layer = SVDLayer(shape[1], shape[0], dtype=T64)
    scale = layer.set_matrix(w)
    got = layer.matrix().detach().numpy() * scale.item()
    np.testing.assert_allclose(got, w, atol=1e-9, rtol=0)
    assert (layer.sigma() <= 1 + 1e-12).all()


def test_hybrid_network_trains_its_phases():
    torch.manual_seed(0)
    net = HybridMZINetwork((6, 8, 3), dtype=T64)
    x = torch.randn(16, 6, dtype=T64)
    y = torch.randint(0, 3, (16,))
    out = net(x)
    assert out.shape == (16, 3) and out.dtype == T64
    torch.nn.functional.cross_entropy(out, y).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert net.layers[0].v.theta.grad.abs().sum() > 0


@pytest.mark.parametrize("arrangement", ARRANGEMENTS)
def test_programmed_network_equals_the_electronic_mlp(arrangement):
    """program(): an MLP's weights through SVD + decomposition give the same function."""
    torch.manual_seed(2)
    sizes = (7, 9, 5, 3)
    ws = [torch.randn(b, a, dtype=T64) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    bs = [torch.randn(b, dtype=T64) for b in sizes[1:]]
    net = HybridMZINetwork(sizes, arrangement, dtype=T64).program(ws, bs)
    x = torch.randn(11, 7, dtype=T64)
    h = x
    for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
        h = h @ w.T + b
        h = torch.relu(h) if i < len(ws) - 1 else h
    torch.testing.assert_close(net(x).detach(), h, atol=1e-9, rtol=0)
    with pytest.raises(ConfigError, match="weights"):
        net.program(ws[:1], bs)


def test_bad_input_names_the_problem():
    with pytest.raises(ConfigError, match="not unitary"):
        decompose(np.ones((3, 3)))
    with pytest.raises(ConfigError, match="square"):
        decompose(np.ones((2, 3)))
    with pytest.raises(ConfigError, match="n_modes"):
        mesh_layout(0)
    with pytest.raises(ConfigError, match="arrangement"):
        mesh_layout(4, "triangle")
    lay = mesh_layout(3)
    z = torch.zeros(lay.n_mzi, dtype=T64)
    with pytest.raises(ConfigError, match="mzi_loss_db"):
        mesh_unitary(lay, z, z, torch.zeros(3, dtype=T64), mzi_loss_db=-0.1)
    with pytest.raises(ConfigError, match="do not fit"):
        mesh_unitary(lay, z[:2], z[:2], torch.zeros(3, dtype=T64))
    with pytest.raises(ConfigError, match="modes"):
        MZIMesh(4)(torch.zeros(2, 5, dtype=torch.complex64))
    with pytest.raises(ConfigError, match="does not fit"):
        SVDLayer(3, 2).set_matrix(np.ones((3, 2)))
    with pytest.raises(ConfigError, match="in_features"):
        SVDLayer(0, 2)
    with pytest.raises(ConfigError, match="sizes"):
        HybridMZINetwork((4,))


# -- per-path loss and the receiver gain; reference precision ------------------------------
@pytest.mark.parametrize("n", [4, 5, 8, 9])
def test_clements_edge_modes_cross_about_half_the_mzis_and_reck_is_a_staircase(n):
    from nonvon.simulators.optical.mesh import mesh_layout

    clements = mesh_layout(n, "clements").mzis_per_mode()
    assert (clements[1:-1] == n).all(), "an inner mode line crosses N MZIs"
    assert clements[0] == (n + 1) // 2 and clements[-1] == n // 2, "edges sit out every other column"
    reck = mesh_layout(n, "reck").mzis_per_mode()
    assert reck.max() == 2 * n - 3 and reck[-1] == 1
    assert clements.sum() == reck.sum() == n * (n - 1)  # two modes per MZI, same MZI count


@pytest.mark.parametrize("arrangement", ["clements", "reck"])
def test_row_transmission_is_the_loss_of_the_paths_each_output_gets(arrangement):
    """A bar-state mesh keeps light in its mode: output j's transmission is loss_db per MZI on
    line j. A gain for the full depth (the old receiver model) over-corrects the edges of a
    Clements mesh by loss_db x N/2: 0.4 dB at N = 8 and 0.1 dB per MZI."""
    from nonvon.simulators.optical.mesh import mesh_layout, row_transmission

    n, loss = 8, 0.1
    lay = mesh_layout(n, arrangement)
    th, ph, out = (torch.full((lay.n_mzi,), math.pi, dtype=T64), torch.zeros(lay.n_mzi, dtype=T64),
                   torch.zeros(n, dtype=T64))
    lossy = mesh_unitary(lay, th, ph, out, mzi_loss_db=loss)
    ideal = mesh_unitary(lay, th, ph, out)
    got_db = -20 * np.log10(row_transmission(lossy, ideal).numpy())
    np.testing.assert_allclose(got_db, loss * lay.mzis_per_mode(), atol=1e-12)
    if arrangement == "clements":
        full_depth_db = loss * lay.n_columns
        assert full_depth_db - got_db.min() == pytest.approx(0.4, abs=1e-9)
    # gains from the calibration restore every output of a random mesh to its loss-free norm
    rng = np.random.default_rng(0)
    th, ph = (torch.from_numpy(rng.uniform(0, 2 * np.pi, lay.n_mzi)) for _ in range(2))
    lossy, ideal = (mesh_unitary(lay, th, ph, out, mzi_loss_db=d) for d in (loss, 0.0))
    fixed = lossy / row_transmission(lossy, ideal)[:, None]
    np.testing.assert_allclose(fixed.abs().pow(2).sum(1).numpy(), 1.0, atol=1e-12)


def _unitarity_error(dtype: torch.dtype, n: int = 100) -> float:
    mesh = MZIMesh(n, dtype=dtype)
    mesh.reset_parameters(torch.Generator().manual_seed(0))
    u = mesh.unitary().detach().to(torch.complex128)
    return float((u.conj().T @ u - torch.eye(n, dtype=u.dtype)).abs().max())


def test_float64_meshes_are_unitary_to_1e_12_and_float32_to_the_documented_1e_5():
    assert _unitarity_error(T64) < 1e-12
    err32 = _unitarity_error(torch.float32)
    assert 1e-8 < err32 < 1e-4  # measured 1.4e-5 at N = 100 (MziConfig.mesh_dtype's docstring)


def test_onn_mzi_mesh_dtype_float64_trains_and_keeps_float64(digits_task):
    from nonvon.simulators.optical.mzi_simulator import MziOnn

    small = {"hidden": (6,), "n_inputs": 6, "epochs": 1, "batch_size": 64, "augment_shift": 0,
             "device": "cpu", "photon_curve": ()}
    sim = MziOnn(mesh_dtype="float64", **small)
    task = digits_task.subset(120, 30, seed=0)
    sim.fit(task, seed=0)
    assert {p.dtype for p in sim.net.parameters()} == {T64}
    assert 0 <= sim.evaluate(task).accuracy <= 1
    assert {p.dtype for p in sim.net.parameters()} == {T64}, "evaluation put it back to float32"
    with pytest.raises(ConfigError, match="mesh_dtype"):
        MziOnn(mesh_dtype="float16", **small)


def test_mesh_index_is_copied_to_a_device_once():
    """A mesh on the GPU must not copy its layout from the host at each evaluation: a CUDA
    graph cannot capture such a copy."""
    layout = MZIMesh(6).layout
    a, b = layout.index_on(torch.device("cpu")), layout.index_on(torch.device("cpu"))
    assert a[0] is b[0] and torch.equal(a[0], layout.index[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (CUDA graphs)")
def test_cuda_graph_mesh_training_equals_eager(monkeypatch):
    """The replayed training step computes what the eager steps compute: same phases, same
    losses, over the cosine schedule and a ragged last batch (700 samples in batches of 128)."""
    from nonvon.models import training

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(700, 12, generator=gen).numpy()
    y = torch.randint(0, 4, (700,), generator=gen).numpy()
    runs = []
    for warmup in (training._GraphedStep.WARMUP, 10**9):  # the second never captures
        monkeypatch.setattr(training._GraphedStep, "WARMUP", warmup)
        torch.manual_seed(0)
        net = HybridMZINetwork((12, 16, 4))
        hist = training.train_classifier(net, x, y, epochs=3, batch_size=128, lr=1e-2,
                                         device="cuda", cuda_graph=True)
        runs.append(({k: v.detach().cpu() for k, v in net.state_dict().items()}, hist))
    (graph, h_graph), (eager, h_eager) = runs
    assert graph.keys() == eager.keys()
    for k in graph:
        assert torch.equal(graph[k], eager[k]), k
    assert h_graph == h_eager
