"""Benchmark scripts not run elsewhere in the suite: a whole compare timed from scratch
(compare_wall.py) and the TTFS training step, eager vs CUDA graph (ttfs_step.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_compare_wall_times_a_fresh_compare(tmp_path, capsys):
    bench = _bench("compare_wall")
    out = tmp_path / "cmp"
    argv = ["--task", "digits", "--quick", "--sim", "gpu-mlp,hdc-projection", "--out", str(out)]
    rec = bench.main(argv)
    assert rec["cells"] == 2 and {c["simulator"] for c in rec["slowest"]} == {"gpu-mlp", "hdc-projection"}
    assert rec["target_s"] == bench.QUICK_TARGET_S and rec["met"] == (rec["wall_s"] <= rec["target_s"])
    assert rec["ratio"] == pytest.approx(rec["target_s"] / rec["wall_s"], rel=1e-3)
    # its last line is the record as JSON; the comparison's own outputs are kept with --out
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == rec
    assert (out / "results.json").is_file() and len(list((out / "cache").glob("*.json"))) == 2
    # a folder with cells in it would time a resumed run, not one from scratch
    with pytest.raises(SystemExit, match="from-scratch"):
        bench.main(argv)


def test_ttfs_step_bench_times_the_eager_step_on_a_cpu(capsys):
    rec = _bench("ttfs_step").main(["--quick"])
    assert rec["network"] == [784, 32, 10] and rec["eager_ms_per_step"] > 0
    assert rec["aten_ops_per_step"] > 10  # the profiler saw the step's operations
    assert rec["graph"].startswith("not run")  # graphs need CUDA; nothing claimed without one
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == rec


def test_shared_training_bench_runs_both_ways(capsys):
    rec = _bench("shared_training").main(["--task", "digits", "--quick"])
    assert set(rec["shared_cells"]) == set(rec["each_trains_cells"]) == {"snn-mlp", "loihi", "spinnaker2"}
    assert rec["same_accuracies"] and rec["ratio"] > 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == rec
