"""Hyperdimensional classifiers: packed inference, op counts, torchhd cross-checks, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchhd

from nonvon.energy_models import get_op_kind, load_preset
from nonvon.energy_models.presets import PRESET_DIR
from nonvon.errors import ConfigError, IncompatibleError
from nonvon.registry import registry
from nonvon.simulators.hdc import (
    HDCConfig,
    HDCIDLevel,
    HDCProjection,
    IDLevelEncoder,
    ProjectionEncoder,
    hamming_packed,
    memory_bytes,
    pack_bits,
    popcount64,
    quantize,
    unpack_bits,
)
from nonvon.simulators.hdc.learners import adapthd_step, bipolar, centroid_sums, onlinehd_step
from nonvon.tasks import Task

HDC_PRESETS = ("hdc-cmos-45nm", "hdc-asic-28nm", "hdc-imc-pcm")


def _vector_task(n_train=120, n_test=40, f=6, classes=3, seed=0) -> Task:
    rng = np.random.default_rng(seed)
    centers = rng.random((classes, f))
    y_tr, y_te = rng.integers(0, classes, n_train), rng.integers(0, classes, n_test)
    x_tr = np.clip(centers[y_tr] + 0.15 * rng.standard_normal((n_train, f)), 0, 1)
    x_te = np.clip(centers[y_te] + 0.15 * rng.standard_normal((n_test, f)), 0, 1)
    x_te[:5, :3] = 0.0  # some zero inputs, which the projection skips
    return Task("hdc-vectors", x_tr.astype(np.float32), y_tr, x_te.astype(np.float32), y_te,
                classes, source="synthetic")


# -- packing ---------------------------------------------------------------------------

@pytest.mark.parametrize("d", [1, 63, 64, 65, 100, 128, 1000])
def test_pack_roundtrip_and_hamming(d, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.random((7, d)) < 0.5, rng.random((3, d)) < 0.5
    pa, pb = pack_bits(a, pad=True), pack_bits(b, pad=True)
    assert pa.dtype == np.uint64 and pa.shape == (7, -(-d // 64))
    assert np.array_equal(unpack_bits(pa, d), a)
    expected = (a[:, None, :] != b[None, :, :]).sum(-1)
    assert np.array_equal(hamming_packed(pa, pb, chunk=3), expected)
    # the plain-torch path (the one a GPU runs) gives the same distances
    ta, tb = torch.from_numpy(pa.view(np.int64)), torch.from_numpy(pb.view(np.int64))
    assert np.array_equal(hamming_packed(ta, tb, chunk=2).numpy(), expected)


def test_popcount64_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 2 ** 64, size=1000, dtype=np.uint64)
    words[:4] = [0, 2 ** 64 - 1, 2 ** 63, 1]
    got = popcount64(torch.from_numpy(words.view(np.int64))).numpy()
    assert np.array_equal(got, np.bitwise_count(words))


def test_pack_rejects_unpadded_and_non_binary():
    with pytest.raises(ConfigError, match="not a multiple of the 64-bit"):
        pack_bits(np.zeros((2, 100), bool))
    with pytest.raises(ConfigError, match="0/1"):
        pack_bits(np.full((1, 64), 2))
    with pytest.raises(TypeError, match="int64"):
        popcount64(torch.zeros(3, dtype=torch.int32))


def test_memory_per_class_vector():
    m = memory_bytes(8192)
    assert m == {"packed_uint64": 1024, "bool": 8192, "float32": 32768}
    assert m["float32"] / m["packed_uint64"] == 32 and m["bool"] / m["packed_uint64"] == 8
    m = memory_bytes(10_000)  # padded to 157 words = 10,048 bits
    assert m["packed_uint64"] == 1256
    assert m["float32"] / m["packed_uint64"] == pytest.approx(31.85, abs=0.01)


# -- cross-checks against torchhd --------------------------------------------------------

def test_bind_and_hamming_match_torchhd(seed):
    g = torch.Generator().manual_seed(seed)
    a = torchhd.random(5, 200, "BSC", generator=g)
    b = torchhd.random(4, 200, "BSC", generator=g)
    ours_bind = np.bitwise_xor(pack_bits(a.numpy(), pad=True), pack_bits(b[0].numpy()[None], pad=True))
    assert np.array_equal(unpack_bits(ours_bind, 200), torchhd.bind(a, b[0]).numpy())
    dist = hamming_packed(pack_bits(a.numpy(), pad=True), pack_bits(b.numpy(), pad=True))
    assert np.array_equal(200 - dist, torchhd.hamming_similarity(a, b).numpy())


def test_idlevel_encoding_matches_torchhd_hash_table(seed):
    rng = np.random.default_rng(seed)
    x = rng.random((9, 12)).astype(np.float32)
    x[0, :4] = 0.0
    x[1, :4] = 1.0
    enc = IDLevelEncoder(12, 300, levels=7, seed=seed)
    ours = enc.encode(quantize(x, 7))
    # torchhd: bind each feature's key with its level hypervector (Level quantizes the
    # raw values itself), add the tie-break vector, majority-bundle the 13 vectors.
    bound = torchhd.bind(enc.keys.weight, enc.level_hvs(torch.from_numpy(x)))
    stack = torch.cat([bound, enc.tiebreak.expand(len(x), 1, -1)], dim=1)
    ref = torchhd.multiset(stack.as_subclass(torchhd.BSCTensor))
    assert torch.equal(ours, ref.as_subclass(torch.Tensor).bool())


def test_projection_accumulators_are_exact(seed):
    rng = np.random.default_rng(seed)
    x = rng.random((5, 28, 28)).astype(np.float32)
    enc = ProjectionEncoder(784, 256, image_shape=(28, 28), receptive_field=9, period_bits=10,
                            seed=seed)
    xq = quantize(x, 256)
    exact = xq.numpy().astype(np.int64) @ enc.phi.numpy().astype(np.int64)
    assert np.array_equal(enc.accumulate(xq).numpy(), exact)
    assert ((enc.phi != 0).sum(0) == 81).all(), "every dimension sees a 9x9 patch"
    bits = enc.encode(xq).numpy()
    assert np.array_equal(bits, ((exact + enc.offset.numpy()) >> 10) & 1 == 1)


def test_learner_updates_match_torchhd(seed):
    g = torch.Generator().manual_seed(seed)
    h = torch.randint(0, 2, (64, 128), generator=g).bool()
    y = torch.randint(0, 4, (64,), generator=g)
    w = centroid_sums(h, y, 4)
    ref = torchhd.models.Centroid(128, 4)
    ref.add(bipolar(h).as_subclass(torchhd.MAPTensor), y)
    assert torch.equal(w, ref.weight.data)
    no_ties = torch.zeros(128, dtype=torch.bool)
    for step, torchhd_update in ((onlinehd_step, ref.add_online),
                                 (lambda *a, **k: adapthd_step(*a, margin=0.0, **k), ref.add_adapt)):
        w0 = w.clone() + torch.randn(w.shape, generator=g)  # break the symmetry of ties
        ref.weight.data = w0.clone()
        errors = step(w0, bipolar(h), y, rate=0.3, model="map", tiebreak=no_ties)
        torchhd_update(bipolar(h).as_subclass(torchhd.MAPTensor), y, lr=0.3)
        assert errors > 0, "the check needs some mispredicted samples"
        torch.testing.assert_close(w0, ref.weight.data, rtol=1e-5, atol=1e-5)


# -- the simulator -------------------------------------------------------------------------

def test_packed_equals_unpacked_on_mnist5k_test_split(reg):
    task = reg.task("mnist-5k")
    # D = 1000 is padded to 16 words: the torchhd path compares the 1,000 unpadded bits
    sim = HDCProjection(dimensions=1000, learner="adapthd", epochs=2).fit(task, seed=0)
    result = sim.evaluate(task)
    packed = sim._predict(task.x_test).labels
    assert np.array_equal(packed, sim.predict_unpacked(task.x_test))
    assert result.n_evaluated == 1000 and result.accuracy > 0.85
    idl = HDCIDLevel(dimensions=512, learner="centroid").fit(task, seed=0)
    assert np.array_equal(idl._predict(task.x_test).labels, idl.predict_unpacked(task.x_test))


def test_map_model_matches_torchhd_cosine(digits_task):
    sim = HDCProjection(model="map", dimensions=700, receptive_field=4, epochs=2).fit(digits_task)
    assert np.array_equal(sim._predict(digits_task.x_test).labels,
                          sim.predict_unpacked(digits_task.x_test))


@pytest.mark.parametrize("model", ["bsc", "map"])
def test_projection_op_counts_closed_form(model):
    task = _vector_task()
    d, c, f = 100, task.n_classes, task.n_features
    sim = HDCProjection(model=model, dimensions=d, receptive_field=0, epochs=2).fit(task, seed=1)
    totals = sim.evaluate(task).ledger.totals
    n = len(task.y_test)
    nnz = int((quantize(task.x_test, 256) != 0).sum())  # only non-zero inputs are added
    assert nnz < n * f
    words = 128  # 100 bits padded to two 64-bit words
    # 256 levels: the host's 8-bit codes need no requantization; features in, class out
    expected = {"add_int32": nnz * d + n * d, "sram_byte": n * f + n * d * 2,
                "host_transfer_byte": n * (f + 1)}
    if model == "bsc":
        expected |= {"xor_bit": n * c * words, "popcount_bit": n * c * words,
                     "hv_read_bit": nnz * d + n * c * words, "cmp_int32": n * (c - 1)}
    else:
        expected |= {"add_fp32": n * c * d, "cmp_fp32": n * (c - 1), "hv_read_bit": nnz * d}
        expected["sram_byte"] += n * c * d * 4
    assert dict(totals) == expected


def test_idlevel_op_counts_closed_form():
    task = _vector_task()
    d, c, f, n = 192, task.n_classes, task.n_features, len(task.y_test)
    totals = HDCIDLevel(dimensions=d, levels=5, learner="centroid").fit(task).evaluate(task).ledger.totals
    assert dict(totals) == {"xor_bit": n * f * d + n * c * d, "popcount_bit": n * (f + 1) * d + n * c * d,
                            "cmp_int32": n * d + n * (c - 1), "hv_read_bit": n * (2 * f + 1) * d + n * c * d,
                            "sram_byte": n * f, "host_transfer_byte": n * (f + 1),
                            "cmp_int8": n * f * 3}  # 5 levels: a 3-step binary search per feature


def test_hdc_kinds_are_cataloged_and_priced_by_hdc_presets():
    for kind in ("xor_bit", "popcount_bit", "hv_read_bit"):
        assert get_op_kind(kind).unit == "bit"
    for name in HDC_PRESETS:
        preset = load_preset(PRESET_DIR / f"{name}.toml")
        assert tuple(preset.paradigms) == ("hdc",)
        for sim in (HDCProjection(), HDCIDLevel()):  # the default binary models
            assert not preset.can_price(sorted(sim.op_kinds)), name
    cmos = load_preset(PRESET_DIR / "hdc-cmos-45nm.toml")
    assert not cmos.can_price(sorted(HDCProjection(model="map").op_kinds))
    assert load_preset(PRESET_DIR / "hdc-imc-pcm.toml").can_price(["add_fp32"]), \
        "the binary in-memory preset must refuse a float search, not price it"


def test_bsc_search_is_cheaper_in_memory(digits_task):
    result = HDCIDLevel(dimensions=1024, learner="centroid").fit(digits_task).evaluate(digits_task)
    reports = {p: result.priced(registry().preset(p)).energy for p in HDC_PRESETS}
    # like for like: the core classes, which hdc-cmos-45nm (a core preset) is limited to
    core = {p: r.energy_by_class_j["compute"] + r.energy_by_class_j["memory"] for p, r in reports.items()}
    assert core["hdc-imc-pcm"] < core["hdc-cmos-45nm"]
    for r in reports.values():
        assert 0 < r.energy_j < 1e-3


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, match", [
    ({"dimensions": 0}, "dimensions=0 must be a positive integer"),
    ({"dimensions": -64}, "dimensions=-64 must be a positive integer"),
    ({"dimensions": 10_000, "pad": False}, "not a multiple of the 64-bit packing word"),
    ({"levels": 1}, "levels=1 must be >= 2"),
    ({"encoder": "projecton"}, "unknown encoder 'projecton'"),
    ({"learner": "svm"}, "unknown learner 'svm'"),
    ({"model": "hrr"}, "unknown model 'hrr'"),
    ({"activation": "relu"}, "unknown activation"),
    ({"encoder": "idlevel", "receptive_field": 5}, "projection encoder only"),
    ({"input_bits": 9}, "input_bits=9"),
    ({"margin": -0.1}, "margin=-0.1"),
])
def test_bad_config_is_a_clear_error(overrides, match):
    with pytest.raises(ConfigError, match=match) as e:
        HDCConfig(**overrides)
    assert e.value.hint


def test_unpadded_dimension_hint_and_map_needs_no_packing():
    with pytest.raises(ConfigError) as e:
        HDCProjection(dimensions=1000, pad=False)
    assert "pad=True" in e.value.hint and "960" in e.value.hint
    assert HDCProjection(dimensions=1000, pad=False, model="map").config.dimensions == 1000


def test_unknown_name_suggests_the_right_one():
    with pytest.raises(ConfigError) as e:
        HDCConfig(learner="adaptHD")
    assert "adapthd" in e.value.hint


def test_receptive_field_larger_than_image_is_refused(digits_task):
    with pytest.raises(IncompatibleError, match="receptive_field=10 exceeds"):
        HDCProjection(receptive_field=10).fit(digits_task)
    with pytest.raises(IncompatibleError, match="image"):
        HDCProjection(receptive_field=3).fit(_vector_task())
