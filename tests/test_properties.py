"""Property tests (hypothesis): ledgers merge associatively; task transforms keep labels and shapes.

Pricing is linear (homogeneous and additive over merged ledgers) and non-negative: see
``test_price_is_homogeneous_and_non_negative`` and ``test_price_is_additive_over_ledgers``
in tests/test_presets.py.
"""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nonvon.energy_models import CATALOG, OpLedger
from nonvon.energy_models.catalog import TIME_UNIT
from nonvon.tasks import Task

COUNT_KINDS = sorted(k for k, v in CATALOG.items() if v.unit != TIME_UNIT)
TIME_KINDS = sorted(k for k, v in CATALOG.items() if v.unit == TIME_UNIT)
SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def ledgers(draw) -> OpLedger:
    totals = draw(st.dictionaries(st.sampled_from(COUNT_KINDS), st.integers(0, 10**9), max_size=6))
    if TIME_KINDS:
        totals |= draw(st.dictionaries(
            st.sampled_from(TIME_KINDS),
            st.floats(0, 1e3, allow_nan=False, allow_infinity=False), max_size=2))
    return OpLedger(totals, draw(st.integers(1, 1000)))


def same_totals(a: OpLedger, b: OpLedger) -> bool:
    """Whole-number kinds exactly equal; seconds equal up to float rounding."""
    if set(a.totals) != set(b.totals) or a.n_inferences != b.n_inferences:
        return False
    for k, v in a.totals.items():
        if CATALOG[k].unit == TIME_UNIT:
            if not math.isclose(v, b.totals[k], rel_tol=1e-12, abs_tol=1e-300):
                return False
        elif v != b.totals[k]:
            return False
    return True


@SETTINGS
@given(ledgers(), ledgers(), ledgers())
def test_ledger_merge_is_associative(a, b, c):
    assert same_totals((a + b) + c, a + (b + c))


@SETTINGS
@given(ledgers(), ledgers())
def test_ledger_merge_is_commutative_and_counts_every_inference(a, b):
    ab = a + b
    assert same_totals(ab, b + a)
    assert ab.n_inferences == a.n_inferences + b.n_inferences
    assert set(ab.totals) == set(a.totals) | set(b.totals)
    # per inference: the mean over both sets of inferences
    for k, v in ab.per_inference().items():
        expect = (a.totals.get(k, 0.0) + b.totals.get(k, 0.0)) / ab.n_inferences
        assert math.isclose(v, expect, rel_tol=1e-12, abs_tol=1e-300)


@SETTINGS
@given(ledgers(), ledgers(), st.integers(1, 1000))
def test_scaling_distributes_over_merge(a, b, k):
    assert same_totals((a + b).scaled(k), a.scaled(k) + b.scaled(k))


@SETTINGS
@given(ledgers())
def test_ledger_json_round_trip_is_exact(a):
    back = OpLedger.from_dict(json.loads(json.dumps(a.to_dict())))
    assert dict(back.totals) == dict(a.totals) and back.n_inferences == a.n_inferences


# -- task transforms ---------------------------------------------------------------------------
@st.composite
def tasks(draw) -> Task:
    side = draw(st.sampled_from([4, 6, 8]))
    n_classes = draw(st.integers(2, 5))
    n_train, n_test = draw(st.integers(n_classes, 40)), draw(st.integers(2, 20))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def labels(n):  # every class present in train, so select_classes always has data
        return rng.permutation(np.resize(np.arange(n_classes), n))

    return Task("prop", rng.random((n_train, side, side), dtype=np.float32), labels(n_train),
                rng.random((n_test, side, side), dtype=np.float32),
                rng.integers(0, n_classes, n_test), n_classes)


def pairs(x: np.ndarray, y: np.ndarray) -> dict[bytes, int]:
    return {row.tobytes(): int(label) for row, label in zip(x, y, strict=True)}


@SETTINGS
@given(tasks(), st.data())
def test_subset_keeps_each_sample_with_its_label(task, data):
    n_tr = data.draw(st.integers(1, len(task.y_train)))
    n_te = data.draw(st.integers(1, len(task.y_test)))
    sub = task.subset(n_tr, n_te, seed=data.draw(st.integers(0, 100)))
    assert sub.x_train.shape == (n_tr, *task.input_shape)
    assert sub.x_test.shape == (n_te, *task.input_shape)
    assert sub.n_classes == task.n_classes
    for split in ("train", "test"):
        original, picked = pairs(*task.split(split)), pairs(*sub.split(split))
        assert len(picked) == len(sub.split(split)[1]), "a sample was drawn twice"
        assert all(original[x] == y for x, y in picked.items())


@SETTINGS
@given(tasks(), st.data())
def test_downsample_keeps_labels_count_and_range(task, data):
    side = data.draw(st.integers(1, task.input_shape[0]))
    small = task.downsample(side)
    for split in ("train", "test"):
        (x, y), (xs, ys) = task.split(split), small.split(split)
        np.testing.assert_array_equal(ys, y)
        assert xs.shape == (len(y), side, side) and xs.dtype == np.float32
        assert xs.min() >= 0.0 and xs.max() <= 1.0
        if task.input_shape[0] % side == 0:  # whole blocks: area averaging keeps the mean
            np.testing.assert_allclose(xs.mean(axis=(1, 2)), x.mean(axis=(1, 2)), atol=1e-6)


@SETTINGS
@given(tasks(), st.data())
def test_select_classes_keeps_rows_and_renumbers_labels_in_order(task, data):
    classes = data.draw(st.lists(st.integers(0, task.n_classes - 1), min_size=2,
                                 max_size=task.n_classes, unique=True))
    sel = task.select_classes(*classes)
    assert sel.n_classes == len(classes)
    for split in ("train", "test"):
        (x, y), (xs, ys) = task.split(split), sel.split(split)
        keep = np.isin(y, classes)
        np.testing.assert_array_equal(xs, x[keep])  # same rows, same order
        np.testing.assert_array_equal(ys, [classes.index(c) for c in y[keep]])


@SETTINGS
@given(tasks(), st.data())
def test_pca_keeps_labels_and_gives_k_features(task, data):
    k = data.draw(st.integers(1, min(task.n_features, len(task.y_train))))
    p = task.pca(k)
    assert p.x_train.shape == (len(task.y_train), k) and p.x_test.shape == (len(task.y_test), k)
    np.testing.assert_array_equal(p.y_train, task.y_train)
    np.testing.assert_array_equal(p.y_test, task.y_test)
    assert np.isfinite(p.x_train).all() and not p.is_image


@SETTINGS
@given(tasks())
def test_each_transform_is_recorded_in_name_and_fingerprint(task):
    chain = [task, task.subset(len(task.y_train), len(task.y_test), seed=3)]
    chain.append(chain[-1].downsample(2))
    chain.append(chain[-1].select_classes(1, 0))
    assert len({t.fingerprint for t in chain}) == len(chain)
    assert chain[-1].name == f"prop|subset{len(task.y_train)},{len(task.y_test)},s3|ds2|classes1,0"
