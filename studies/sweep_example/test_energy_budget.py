"""Accuracy and energy budgets as a pytest sweep (docs/sweeps.md).

Run with ``pytest studies/sweep_example``; the project's own tests run it too
(tests/test_sweep.py). The first run fits four small MLPs on scikit-learn's 8x8
digits; later runs read their results from ``.pytest_cache/d/nonvon-sweep``
(``NONVON_TEST_CACHE`` moves it, ``pytest --cache-clear`` empties it).
"""

from nonvon.testing import sweep

MLP = {"name": "gpu-mlp", "set": {"hidden": [32], "batch_size": 64, "lr": 0.02, "device": "cpu"}}


# 2 epoch budgets x 2 seeds x 2 presets = 8 test cases from 4 fitted networks.
@sweep(tasks="digits", simulators={**MLP, "grid": {"epochs": [2, 5]}},
       presets=["cmos-45nm", "cmos-7nm"], seeds=[0, 1])
def test_mlp_meets_accuracy_and_energy_budget(cell):
    assert cell.accuracy >= 0.85, f"{cell}: accuracy {cell.accuracy:.3f}"
    assert cell.energy_j <= 300e-9, f"{cell}: {cell.energy_j:.3g} J per inference"
    assert abs(sum(cell.breakdown_j.values()) - cell.energy_j) <= 1e-12 * cell.energy_j


def test_newer_node_is_cheaper_for_the_same_network(nonvon_cells):
    # nonvon_cells (a fixture, see conftest.py): cells on demand, cached like the sweep's.
    # One fit, priced on two presets; the cell is the sweep's epochs=2, seed 0 cell above.
    old = nonvon_cells.run("digits", "gpu-mlp", preset="cmos-45nm", epochs=2, **MLP["set"])
    new = nonvon_cells.run("digits", "gpu-mlp", preset="cmos-7nm", epochs=2, **MLP["set"])
    assert new.accuracy == old.accuracy
    assert new.energy.energy_j < old.energy.energy_j / 2
