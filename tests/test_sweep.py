"""nonvon sweep: grids, resumable runs, failures kept with their traceback, Ray, pytest helpers."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nonvon.cli import run as run_cli
from nonvon.compare import cell_key, compare
from nonvon.errors import ConfigError
from nonvon.registry import Registry
from nonvon.simulators.gpu import GpuMLP
from nonvon.sweep import Grid, load_grid, plan_sweep, run_sweep
from nonvon.testing import CellCache, SweepCase, sweep

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "studies" / "sweep_example"
MLP_SET = {"hidden": [16], "batch_size": 64, "lr": 0.01, "device": "cpu"}
QUIET = {"progress": False, "log": lambda m: None}


def without_timings(rows: list[dict]) -> list[dict]:
    """Rows less what depends on where and beside what they ran (wall times, machine)."""
    return [{k: v for k, v in r.items() if k not in ("sim_wall_s", "fit_wall_s", "machine")}
            for r in rows]


def read_rows(out: Path) -> list[dict]:
    return json.loads((out / "results.json").read_text())["rows"]


def small_grid(**extra) -> dict:
    return {"tasks": ["digits"], "seeds": [0, 1], "presets": ["cmos-45nm"],
            "simulators": [{"name": "gpu-mlp", "set": {**MLP_SET, "epochs": 1}}], **extra}


# -- the grid -------------------------------------------------------------------------------
def test_example_grid_plans_24_distinct_cells(reg):
    grid = load_grid(EXAMPLE / "grid.toml")
    plan = plan_sweep(grid, reg)
    assert len(plan.cells) == 24
    assert len({c.key for c in plan.cells}) == 24
    assert {c.task_name for c in plan.cells} == {"digits", "digits|ds4"}
    labels = {(c.simulator, c.config_label) for c in plan.cells}
    assert labels == {("gpu-mlp", "epochs=2"), ("gpu-mlp", "epochs=5"), ("gpu-cnn", "")}
    assert all(c.presets == ("gpu-h100", "cmos-45nm", "cmos-7nm") for c in plan.cells)


def test_swept_options_multiply_and_fixed_ones_apply_to_all(reg):
    grid = Grid.from_dict({"tasks": ["digits"], "seeds": [3],
                           "simulators": [{"name": "gpu-mlp", "set": {"device": "cpu"},
                                           "grid": {"epochs": [1, 2, 3], "hidden": [[8], [8, 8]]}}]})
    cells = plan_sweep(grid, reg).cells
    assert len(cells) == 6
    assert all(c.overrides["device"] == "cpu" and c.seed == 3 for c in cells)
    assert {c.overrides["hidden"] for c in cells} == {(8,), (8, 8)}  # TOML arrays -> tuples
    assert {c.config_label for c in cells} >= {"epochs=1,hidden=8", "epochs=3,hidden=8x8"}
    # no presets given: every registered preset that prices the simulator, as compare does
    fitting = {p.name for p in reg.presets_for("gpu", reg.simulator("gpu-mlp").op_kinds)}
    assert {"gpu-h100", "cmos-7nm", "npu-7nm"} <= fitting
    assert set(cells[0].presets) == fitting


def test_task_transforms_apply_in_the_order_written(reg):
    grid = Grid.from_dict({"tasks": [{"name": "digits", "subset": [200, 50, 1], "downsample": 4}],
                           "simulators": ["gpu-mlp"]})
    assert plan_sweep(grid, reg).cells[0].task_name == "digits|subset200,50,s1|ds4"


# -- running, resuming ------------------------------------------------------------------------
def test_each_cell_writes_its_own_result_and_a_rerun_computes_nothing(tmp_path, reg):
    out = tmp_path / "out"
    first = run_sweep(small_grid(), out_dir=out, executor="inline", **QUIET)
    assert first.counts == {"done": 2, "failed": 0, "pending": 0, "computed": 2, "cached": 0}
    files = sorted((out / "cache").glob("*.json"))
    assert [f.stem for f in files] == sorted(c.cell.key for c in first.cells)
    stamps = [f.stat().st_mtime_ns for f in files]
    rows = read_rows(out)
    assert len(rows) == 2 and {r["preset"] for r in rows} == {"cmos-45nm"}
    assert all(r["config"]["epochs"] == 1 and r["cell"] in {f.stem for f in files} for r in rows)
    manifest = json.loads((out / "sweep.json").read_text())
    assert [c["status"] for c in manifest["cells"]] == ["done", "done"]

    again = run_sweep(small_grid(), out_dir=out, executor="inline", **QUIET)
    assert (again.computed, again.cached) == (0, 2)
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert without_timings(read_rows(out)) == without_timings(rows)


def test_without_a_progress_bar_each_finished_cell_is_logged(tmp_path):
    lines: list[str] = []
    run_sweep(small_grid(), out_dir=tmp_path / "out", executor="inline", progress=False,
              log=lines.append)
    done = [m for m in lines if m.startswith("done ")]
    assert [m.split(" ")[1] for m in done] == ["1/2", "2/2"]
    assert all("digits / gpu-mlp" in m and "%, fit " in m for m in done)


def test_sweep_and_the_pytest_helpers_reuse_cells_that_compare_computed(tmp_path, reg):
    """One key and one file format for a cell, whichever command computed it."""
    out = tmp_path / "out"
    done = compare(["digits"], ["gpu-mlp"], presets=["cmos-45nm"], seeds=(1,), out_dir=out,
                   overrides={"gpu-mlp": {**MLP_SET, "hidden": (16,), "epochs": 1}}, **QUIET)
    outcome = run_sweep(small_grid(seeds=[1]), out_dir=out, executor="inline", **QUIET)
    assert (outcome.computed, outcome.cached) == (0, 1)
    cells = CellCache(out / "cache")
    got = cells.run("digits", "gpu-mlp", seed=1, preset="cmos-45nm", epochs=1, **MLP_SET)
    assert (cells.computed, cells.loaded) == (0, 1)
    assert got.accuracy == done.results[0].accuracy
    assert got.energy.energy_j == done.rows[0]["energy_per_inference_j"]


class Flaky(GpuMLP):
    """gpu-mlp that fails while ``broken`` is set (a stand-in for a transient fault)."""

    broken = True

    def _fit(self, task, *, seed, progress):
        if Flaky.broken:
            raise RuntimeError("simulated fault in _fit")
        super()._fit(task, seed=seed, progress=progress)


def test_failures_are_recorded_skipped_on_rerun_and_retried_on_request(tmp_path, reg, monkeypatch):
    flaky_reg = Registry(simulators={**reg.simulators, "flaky": Flaky}, tasks=reg.tasks,
                         presets=reg.presets)
    grid = small_grid(simulators=[{"name": "gpu-mlp", "set": {**MLP_SET, "epochs": 1}},
                                  {"name": "flaky", "set": {**MLP_SET, "epochs": 1}}])
    out = tmp_path / "out"
    monkeypatch.setattr(Flaky, "broken", True)
    first = run_sweep(grid, out_dir=out, executor="inline", reg=flaky_reg, **QUIET)
    assert first.counts["done"] == 2 and first.counts["failed"] == 2
    failed = sorted((out / "failed").glob("*.json"))
    assert len(failed) == 2
    record = json.loads(failed[0].read_text())
    assert record["error"] == "RuntimeError" and record["message"] == "simulated fault in _fit"
    assert "Traceback" in record["traceback"] and "_fit" in record["traceback"]
    assert record["cell"]["simulator"] == "flaky"
    assert {r["simulator"] for r in read_rows(out)} == {"gpu-mlp"}  # the good cells are kept
    manifest = json.loads((out / "sweep.json").read_text())
    assert sorted(c["status"] for c in manifest["cells"]) == ["done", "done", "failed", "failed"]
    assert all("simulated fault" in c["error"] for c in manifest["cells"] if c["status"] == "failed")

    monkeypatch.setattr(Flaky, "broken", False)
    rerun = run_sweep(grid, out_dir=out, executor="inline", reg=flaky_reg, **QUIET)
    assert rerun.computed == 0 and rerun.counts["failed"] == 2, "a plain rerun skips failures"
    retry = run_sweep(grid, out_dir=out, executor="inline", reg=flaky_reg, retry_failed=True,
                      **QUIET)
    assert retry.computed == 2 and retry.counts == {**retry.counts, "done": 4, "failed": 0}
    assert not list((out / "failed").glob("*.json")), "a success clears the failure record"
    assert {r["simulator"] for r in read_rows(out)} == {"gpu-mlp", "flaky"}


def test_cli_failed_cells_exit_1_with_the_traceback_on_disk(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    # Four pooling stages cannot fit an 8x8 image: the CNN fails when it is built, in _fit.
    grid.write_text('tasks = ["digits"]\npresets = ["cmos-45nm"]\n'
                    '[[simulators]]\nname = "gpu-cnn"\n'
                    'set = { channels = [2, 2, 2, 2], epochs = 1, device = "cpu" }\n')
    out = tmp_path / "out"
    assert run_cli("sweep", str(grid), "--out", str(out), "--executor", "inline",
                   "--no-progress") == 1
    err = capsys.readouterr().err
    assert "1 cell(s) failed" in err and "--retry-failed" in err
    (record,) = [json.loads(p.read_text()) for p in (out / "failed").glob("*.json")]
    assert "pooling stages are too many" in record["message"]
    assert "Traceback" in record["traceback"]


def test_dry_run_lists_cells_and_writes_nothing(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text('tasks = ["digits"]\nseeds = [0, 1, 2]\nsimulators = ["gpu-mlp"]\n')
    assert run_cli("sweep", str(grid), "--out", str(tmp_path / "o"), "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.count("pending") == 3 and "digits / gpu-mlp / seed 2" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.toml"]


def test_a_second_sweep_into_a_busy_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".sweep.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ConfigError, match="another nonvon sweep is writing"):
            run_sweep(small_grid(), out_dir=out, executor="inline", **QUIET)
    assert sorted(p.name for p in out.iterdir()) == [".sweep.lock"]


# -- Ray and the local executor: 24 cells, the same results ---------------------------------
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_example_grid_on_local_ray_matches_local_processes(tmp_path):
    pytest.importorskip("ray", reason="the Ray executor needs the 'ray' extra")
    ray_out, local_out = tmp_path / "ray", tmp_path / "local"
    # the example grid with one seed of its four: every task and config, a quarter of the time
    text = (EXAMPLE / "grid.toml").read_text()
    assert "seeds = [0, 1, 2, 3]" in text
    grid = tmp_path / "grid.toml"
    grid.write_text(text.replace("seeds = [0, 1, 2, 3]", "seeds = [0]"))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run([sys.executable, "-m", "nonvon.cli", "sweep", str(grid),
                           "--executor", "ray", "--jobs", "2", "--out", str(ray_out),
                           "--no-progress"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=540)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "6 cell(s) computed" in proc.stderr
    local = run_sweep(grid, out_dir=local_out, executor="local", jobs=2, write_report=False,
                      **QUIET)
    assert local.counts["done"] == 6 and local.computed == 6
    ray_rows, local_rows = read_rows(ray_out), read_rows(local_out)
    assert len(ray_rows) == 6 * 3
    assert without_timings(ray_rows) == without_timings(local_rows)
    for f in (ray_out / "cache").glob("*.json"):
        a, b = (json.loads(p.read_text()) for p in (f, local_out / "cache" / f.name))
        assert b["machine"].endswith("up to 2 cells at once")  # local workers say they shared
        for d in (a, b):
            del d["sim_wall_s"], d["fit_wall_s"], d["machine"]
        assert a == b, f.name


# -- pytest helpers -----------------------------------------------------------------------------
def test_sweep_marker_parametrizes_every_cell_and_preset(tmp_path, reg):
    mark = sweep(tasks="digits", seeds=[0, 1], cache_dir=tmp_path,
                 simulators={"name": "gpu-mlp", "set": {"batch_size": 64, "device": "cpu",
                                                        "epochs": 1},
                             "grid": {"hidden": [[8], [16]]}})
    argname, cases = mark.args
    ids = mark.kwargs["ids"]
    assert argname == "cell" and all(isinstance(c, SweepCase) for c in cases)
    fitting = reg.presets_for("gpu", reg.simulator("gpu-mlp").op_kinds)
    assert len(cases) == 2 * 2 * len(fitting) == len(set(ids))  # configs x seeds x fitting presets
    assert "digits-gpu-mlp-hidden=8-s1-cmos-7nm" in ids
    assert not list(tmp_path.iterdir()), "nothing is computed at collection"
    a, b = cases[0], cases[1]  # the same cell on two presets: one fit
    assert a.cell.key == b.cell.key and a.preset != b.preset
    assert a.accuracy == b.accuracy and a.energy_j != b.energy_j
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_the_pytest_sweep_example_passes_and_caches_between_runs(tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "NONVON_TEST_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE)]
    first = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout[-3000:]
    assert "9 passed" in first.stdout
    stamps = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.json")}
    assert len(stamps) == 4  # 2 configs x 2 seeds; the fixture test reuses one of them
    second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0 and "9 passed" in second.stdout, second.stdout[-3000:]
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.json")} == stamps


def test_the_example_grid_keys_match_compare_keys(reg):
    """The sweep files its cells under compare's key: one idea, one place."""
    grid = load_grid(EXAMPLE / "grid.toml")
    cell = plan_sweep(grid, reg).cells[0]
    task = reg.task("digits")
    sim = reg.simulator("gpu-mlp", **{k: tuple(v) if isinstance(v, list) else v
                                      for k, v in cell.overrides.items()})
    assert cell.key == cell_key(task, sim, cell.seed)


# -- scale: linear planning, the size guard, dry runs of large grids -------------------------
def test_config_labels_name_what_varies_and_take_linear_time():
    from nonvon.grids import _config_labels

    entries = [("a", {"x": 1, "y": 2}), ("a", {"x": 2, "y": 2}), ("b", {"x": 1}),
               ("b", {"x": 1, "z": (8, 8)})]
    assert _config_labels(entries) == ["x=1", "x=2", "", "z=8x8"]
    # 200,000 configs: a quadratic pass would compare 4e10 pairs (hours); linear is < 1 s
    import time

    many = [("a", {"epochs": i, "hidden": (16,), "device": "cpu"}) for i in range(200_000)]
    t = time.perf_counter()
    labels = _config_labels(many)
    assert time.perf_counter() - t < 5
    assert labels[7] == "epochs=7" and len(set(labels)) == len(many)


def million_cell_grid(**extra) -> dict:
    return {"tasks": ["digits"], "seeds": [0, 1], "presets": ["cmos-45nm"],
            "simulators": [{"name": "gpu-mlp", "set": {"device": "cpu"},
                            "grid": {"epochs": list(range(1, 1001)),
                                     "batch_size": list(range(1, 501))}}], **extra}


def test_a_grid_above_the_size_limit_is_refused_at_once_with_its_count(tmp_path, reg):
    grid = Grid.from_dict(million_cell_grid())
    assert grid.size == 1_000_000
    with pytest.raises(ConfigError, match=r"1,000,000 cells \(1 task\(s\) x 500,000 simulator "
                                          r"config\(s\) x 2 seed\(s\)\), more than the limit "
                                          r"of 100,000") as e:
        run_sweep(grid, out_dir=tmp_path / "out", executor="inline", **QUIET)
    assert "max_cells = 1000000" in e.value.hint
    assert not (tmp_path / "out").exists(), "refused before anything was written"
    # the explicit override, in the grid file or as an argument, lifts the guard
    Grid.from_dict(million_cell_grid(max_cells=1_000_000)).check_size()
    grid.check_size(max_cells=2_000_000)
    with pytest.raises(ConfigError, match="max_cells = 0 must be a positive integer"):
        Grid.from_dict(million_cell_grid(max_cells=0))


def test_dry_run_of_a_million_cells_lists_the_first_ones_at_once(tmp_path, capsys):
    import time

    grid = tmp_path / "big.toml"
    epochs, batches = ", ".join(map(str, range(1, 1001))), ", ".join(map(str, range(1, 251)))
    grid.write_text('tasks = ["digits"]\nseeds = [0, 1]\npresets = ["cmos-45nm"]\n'
                    '[[simulators]]\nname = "gpu-mlp"\nset = { device = "cpu" }\n'
                    f'grid = {{ epochs = [{epochs}], hidden = [[8], [8, 8]], '
                    f'batch_size = [{batches}] }}\n')
    t = time.perf_counter()
    assert run_cli("sweep", str(grid), "--out", str(tmp_path / "o"), "--dry-run") == 0
    assert time.perf_counter() - t < 20
    out = capsys.readouterr().out
    assert "plan: 1,000,000 cell(s), the first 20 listed" in out
    # labels in brackets are shown, not swallowed as Rich markup
    assert "digits / gpu-mlp[epochs=1,hidden=8,batch_size=1] / seed 1" in out
    assert out.count("pending") == 20
    assert "more than the limit of 100,000" in out and "max_cells" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.toml"]


def test_dry_run_counts_every_cell_by_status(tmp_path, reg):
    out = tmp_path / "out"
    run_sweep(small_grid(seeds=[0]), out_dir=out, executor="inline", **QUIET)
    plan = run_sweep(small_grid(seeds=[0, 1, 2]), out_dir=out, dry_run=True, **QUIET)
    assert plan.total == 3 and [c.status for c in plan.cells] == ["done", "pending", "pending"]
    assert not plan.ok and plan.note == ""


# -- spawn-safe entry: the documented Python example as a script ----------------------------
def documented_python_example() -> str:
    text = (ROOT / "docs" / "sweeps.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    (block,) = [b for b in blocks if "run_sweep(" in b]
    return block


def test_the_documented_python_example_runs_as_a_script(tmp_path):
    """Saved as a file and run, the example must not make each worker re-run the file."""
    code = documented_python_example()
    assert "if __name__" not in code  # the point: no guard needed
    grid = tmp_path / "grid.toml"
    grid.write_text('tasks = ["digits"]\nseeds = [0, 1]\npresets = ["cmos-45nm"]\n'
                    '[[simulators]]\nname = "gpu-mlp"\n'
                    'set = { hidden = [8], epochs = 1, batch_size = 64, device = "cpu" }\n')
    script = tmp_path / "sweep_example.py"
    script.write_text(code.replace("studies/sweep_example/grid.toml", str(grid)))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "'done': 2, 'failed': 0" in proc.stdout and "WorkerDied" not in proc.stderr
    assert len(list((tmp_path / "sweep-example" / "cache").glob("*.json"))) == 2


def test_workers_dying_before_any_cell_raise_with_what_they_wrote(tmp_path, monkeypatch):
    from nonvon import executors
    from nonvon.sweep import WorkersDiedError

    monkeypatch.setattr(executors, "_WORKER_MAIN",
                        "import sys; sys.stderr.write('ImportError: broken env\\n'); sys.exit(3)")
    out = tmp_path / "out"
    with pytest.raises(WorkersDiedError, match=r"3 worker processes died before they could "
                                               r"take a cell \(exit code\(s\) 3\); 2 cell\(s\) "
                                               r"not run(.|\n)*ImportError: broken env") as e:
        run_sweep(small_grid(), out_dir=out, executor="local", jobs=2, **QUIET)
    assert "--executor inline" in e.value.hint
    manifest = json.loads((out / "sweep.json").read_text())
    assert [c["status"] for c in manifest["cells"]] == ["pending", "pending"]
    assert not (out / "failed").exists() or not list((out / "failed").iterdir())
