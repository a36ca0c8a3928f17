"""Shared fixtures: small real tasks (scikit-learn's digits, always offline) and the registry."""

from __future__ import annotations

import os

import numpy as np
import pytest

from nonvon.registry import registry
from nonvon.tasks import Task


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never read or write the user's real data cache from tests."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def _png_figures_only(request, monkeypatch):
    """Reports in tests draw their figures as PNG only: the SVG and PDF copies cost more than
    the PNG and are checked where they are the subject (``vector_figures`` marker)."""
    if request.node.get_closest_marker("vector_figures") is None:
        import nonvon.report

        monkeypatch.setattr(nonvon.report, "_VECTOR_FORMATS", {})


@pytest.fixture(scope="session")
def reg():
    return registry()


@pytest.fixture(scope="session")
def digits_task() -> Task:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(x))
    tr, te = idx[:600], idx[600:800]
    return Task("digits-test", x[tr], d.target[tr], x[te], d.target[te], 10, source="sklearn digits")


@pytest.fixture
def seed() -> int:
    return int(os.environ.get("NONVON_TEST_SEED", "0"))


@pytest.fixture(scope="session")
def check_chip_presets(reg):
    """``check(sim, result, wanted)``: every chip-boundary preset that prices ``sim`` (among
    them the presets named in ``wanted``) charges its memory and io, and charges static power
    and interconnect or says in ``absent`` why the chip has none."""
    from nonvon.energy_models import price

    def check(sim, result, wanted: set[str]) -> None:
        chips = [p for p in reg.presets_for(sim.paradigm, sim.op_kinds) if p.boundary == "chip"]
        assert wanted <= {p.name for p in chips}
        for p in chips:
            by_class = price(result.ledger, p).energy_by_class_j
            assert by_class["memory"] > 0 and by_class["io"] > 0, p.name
            for cls in ("static", "interconnect"):
                assert by_class[cls] > 0 or len(p.absent.get(cls, "")) > 20, (p.name, cls)

    return check
