"""Determinism: the same grid and seeds give identical results on CPU, timings aside."""

from __future__ import annotations

import json

from nonvon.sweep import run_sweep
from nonvon.testing import sweep

QUIET = {"progress": False, "log": lambda m: None}
TIMINGS = ("sim_wall_s", "fit_wall_s")
GRID = {
    "tasks": ["digits", {"name": "digits", "classes": [3, 6], "downsample": 4}],
    "seeds": [0, 1],
    "presets": ["cmos-7nm", "gpu-h100"],
    "simulators": [
        {"name": "gpu-mlp", "set": {"hidden": [16], "epochs": 2, "batch_size": 64, "device": "cpu"}},
        {"name": "gpu-cnn", "set": {"channels": [4], "dense": 8, "epochs": 1, "batch_size": 64,
                                    "device": "cpu"}},
    ],
}


def strip(obj):
    """The JSON with every wall-clock timing removed (they are the only thing that may differ)."""
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items() if k not in TIMINGS}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


def test_same_grid_and_seeds_give_identical_results_json(tmp_path):
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        run_sweep(GRID, out_dir=out, executor="inline", write_report=False, **QUIET)
    a, b = (json.loads((o / "results.json").read_text()) for o in outs)
    assert len(a["rows"]) == 2 * 2 * 2 * 2  # tasks x simulators x seeds x presets
    assert strip(a) == strip(b)
    cells_a = sorted(p.name for p in (outs[0] / "cache").glob("*.json"))
    assert cells_a == sorted(p.name for p in (outs[1] / "cache").glob("*.json"))
    for name in cells_a:
        ra, rb = (json.loads((o / "cache" / name).read_text()) for o in outs)
        assert strip(ra) == strip(rb), name


def test_seeds_are_honoured(tmp_path):
    grid = {**GRID, "seeds": [0, 1, 2], "tasks": ["digits"], "simulators": GRID["simulators"][:1]}
    outcome = run_sweep(grid, out_dir=tmp_path, executor="inline", write_report=False, **QUIET)
    rows = [r for r in outcome.rows if r["preset"] == "cmos-7nm"]
    assert [r["seed"] for r in rows] == [0, 1, 2]
    # Same network, so the same counted ops per inference; different training runs.
    assert len({json.dumps(r["ledger"], sort_keys=True) for r in rows}) == 1
    assert len({r["accuracy"] for r in rows}) > 1


def test_pytest_helper_gives_the_sweeps_numbers(tmp_path):
    out = tmp_path / "sweep"
    outcome = run_sweep({**GRID, "tasks": ["digits"], "seeds": [1]}, out_dir=out,
                        executor="inline", write_report=False, **QUIET)
    mark = sweep(tasks="digits", simulators=GRID["simulators"], presets=GRID["presets"], seeds=[1],
                 cache_dir=tmp_path / "fresh")  # computes again, in this process
    _, cases = mark.args
    by_cell = {(r["cell"], r["preset"]): r for r in outcome.rows}
    assert len(cases) == len(by_cell) == 4
    for case in cases:
        row = by_cell[(case.cell.key, case.preset)]
        assert strip(case.row) == strip(row)  # one row schema for the helpers and sweep
