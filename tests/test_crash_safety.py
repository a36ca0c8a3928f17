"""Crash safety: a killed sweep resumes to the results of an uninterrupted one; no half files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nonvon import _io
from nonvon.sweep import run_sweep

ROOT = Path(__file__).resolve().parents[1]
QUIET = {"progress": False, "log": lambda m: None}

# Five cells of a few hundred optimizer steps each: slow enough to be killed between cells.
GRID = '''tasks = ["digits"]
seeds = [0, 1, 2, 3, 4]
presets = ["cmos-45nm", "gpu-h100"]
[[simulators]]
name = "gpu-mlp"
set = { hidden = [32], epochs = 4, batch_size = 16, device = "cpu" }
'''


def without_timings(rows):
    return [{k: v for k, v in r.items() if k not in ("sim_wall_s", "fit_wall_s")} for r in rows]


def sweep_cmd(grid: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nonvon.cli", "sweep", str(grid), "--out", str(out),
            "--no-progress", *extra]


def wait_until_gone(pgid: int, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)
    return False


def test_sigkilled_sweep_resumes_to_the_uninterrupted_results(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    out = tmp_path / "killed"
    log = tmp_path / "first.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(sweep_cmd(grid, out, "--jobs", "1"), stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    cache = out / "cache"
    deadline = time.monotonic() + 240
    while len(list(cache.glob("*.json"))) < 2:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "cells never finished"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # the driver dies; its worker must notice and go
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the sweep ended before it could be killed"
    assert wait_until_gone(proc.pid), "a worker outlived its killed driver"

    finished = sorted(cache.glob("*.json"))
    assert 2 <= len(finished) < 5, "the kill did not land mid-sweep"
    for f in finished:
        json.loads(f.read_text())  # every result file is whole
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp") and not p.name.startswith(".")]
    assert not (out / "results.json").exists()
    stamps = {f.name: f.stat().st_mtime_ns for f in finished}

    resumed = subprocess.run(sweep_cmd(grid, out, "--jobs", "1"), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (f"{5 - len(finished)} cell(s) computed, {len(finished)} already finished"
            in resumed.stderr)
    assert {n: (cache / n).stat().st_mtime_ns for n in stamps} == stamps, "finished cells redone"

    reference = tmp_path / "uninterrupted"
    run_sweep(grid, out_dir=reference, executor="inline", write_report=False, **QUIET)
    rows = json.loads((out / "results.json").read_text())["rows"]
    ref_rows = json.loads((reference / "results.json").read_text())["rows"]
    assert len(rows) == 10
    assert without_timings(rows) == without_timings(ref_rows)


CRASHER = '''"""A simulator whose fit kills its own process, as a segfault or the OOM killer would."""
import os
import signal

from nonvon.simulators.gpu import GpuMLP


class Crasher(GpuMLP):
    def _fit(self, task, *, seed, progress):
        if seed == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        super()._fit(task, seed=seed, progress=progress)
'''


def test_a_worker_that_dies_fails_only_its_cell(tmp_path):
    site = tmp_path / "site"
    info = site / "crasher-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: crasher\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[nonvon.simulators]\ncrasher = nonvon_crasher:Crasher\n")
    (site / "nonvon_crasher.py").write_text(CRASHER)
    grid = tmp_path / "grid.toml"
    grid.write_text('tasks = ["digits"]\nseeds = [0, 1, 2]\npresets = ["cmos-45nm"]\n'
                    '[[simulators]]\nname = "crasher"\n'
                    'set = { hidden = [8], epochs = 1, device = "cpu" }\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = tmp_path / "out"
    proc = subprocess.run(sweep_cmd(grid, out, "--jobs", "1"), env=env, capture_output=True,
                          text=True, timeout=300, start_new_session=True)
    assert proc.returncode == 1, proc.stderr[-3000:]
    manifest = json.loads((out / "sweep.json").read_text())
    status = {c["seed"]: c["status"] for c in manifest["cells"]}
    assert status == {0: "done", 1: "failed", 2: "done"}, "the cells after the crash still ran"
    (record,) = [json.loads(p.read_text()) for p in (out / "failed").glob("*.json")]
    assert record["error"] == "WorkerDied" and "exit code -9" in record["message"]
    assert record["cell"]["seed"] == 1


def test_an_interrupted_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    _io.atomic_write_json(target, {"accuracy": 0.5})

    def power_cut(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", power_cut)
    with pytest.raises(OSError, match="No space left"):
        _io.atomic_write_json(target, {"accuracy": 0.9, "padding": "x" * 100_000})
    assert json.loads(target.read_text()) == {"accuracy": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"], "temp file left behind"
