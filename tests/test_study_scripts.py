"""Every study script not run elsewhere in the suite, end to end on a tiny setting.

Each runs as a user runs it (``python studies/<name>.py ...`` in a subprocess) on the
``digits`` task; the test checks that it exits cleanly and writes each output it documents,
figures as real, non-empty PNG images (the full runs' figures are in docs/results/).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

ROOT = Path(__file__).resolve().parents[1]

# (script, arguments after --out/its own output flag, figures, JSON files)
CASES = {
    "gpu_baseline": (["--task", "digits", "--set", "gpu-mlp.epochs=1", "--set", "gpu-cnn.epochs=1",
                      "--no-progress"],
                     ["accuracy_vs_energy.png", "energy_breakdown.png", "latency.png"],
                     ["results.json"]),
    "hdc_dimension_sweep": (["--task", "digits", "--dims", "64,128", "--encoders", "projection",
                             "--learners", "centroid", "--models", "bsc", "--epochs", "1",
                             "--receptive-field", "3", "--no-progress"],
                            ["accuracy_energy_vs_dimension.png"], ["sweep.json"]),
    "hdc_lowdim": (["--quick", "--dims", "16,32", "--no-progress"], ["accuracy_vs_energy.png"],
                   ["hdc_lowdim.json"]),
    "loihi_calibration": (["--task", "digits", "--steps", "2,4", "--epochs", "1", "--side", "8",
                           "--hidden", "16", "--limit", "100"],
                          ["energy_vs_T.png"], ["loihi_calibration.json"]),
    "onn_mzi": (["--quick", "--chips", "1", "--no-progress"], ["robustness.png"], ["results.json"]),
    "spiking_conversion": (["--task", "digits", "--steps", "1,4", "--energy-steps", "4",
                            "--epochs", "1", "--limit", "100"],
                           ["accuracy_vs_T.png"], ["conversion.json"]),
    "spiking_targets": (["--tasks", "digits", "--models", "mlp", "--epochs", "1", "--limit", "200",
                         "--device", "cpu"],
                        [], ["spiking_targets.json"]),
}


def run_study(name: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(ROOT / "studies" / f"{name}.py"), *args],
                          capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100, f"{path.name} is {image.shape}"
    assert image.std() > 0.01, f"{path.name} is blank"


@pytest.mark.parametrize("name", sorted(CASES))
def test_study_runs_and_writes_its_outputs(name, tmp_path):
    args, figures, records = CASES[name]
    done = run_study(name, "--out", str(tmp_path), *args)
    assert done.returncode == 0, done.stderr[-3000:]
    for fig in figures:
        assert_png(tmp_path / fig)
    for rec in records:
        assert json.loads((tmp_path / rec).read_text()), f"{rec} is empty"
    assert not list(tmp_path.rglob("*.tmp*")), "a temporary file was left behind"


def test_spiking_energy_prices_the_weights_spiking_targets_wrote(tmp_path):
    trained = run_study("spiking_targets", "--out", str(tmp_path), *CASES["spiking_targets"][0])
    assert trained.returncode == 0, trained.stderr[-3000:]
    out = tmp_path / "energy.json"
    done = run_study("spiking_energy", "--weights", str(tmp_path), "--tasks", "digits",
                     "--sims", "snn-mlp", "--limit", "50", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert {r["preset"] for r in rows} >= {"cmos-45nm", "cmos-7nm"}
    assert all(r["energy_per_inference_j"] > 0 for r in rows)
    assert json.loads(done.stdout.strip().splitlines()[-1])["study"] == "spiking_energy"
