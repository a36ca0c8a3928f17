"""Bad input: a clear message naming the problem and the fix, exit code 2, nothing written.

New cases only. Already covered elsewhere, and not repeated here: compare's CLI errors
(unknown simulator / task / preset, bad --set, bad --seeds, missing preset file, unknown
flag, malformed preset TOML; tests/test_compare.py), the IDX parser on its own
(tests/test_idx.py), downloads and checksums over HTTP (tests/test_download.py), malformed
preset files (tests/test_presets.py), task transforms' argument checks
(tests/test_datasets.py), and NaN / wrong-shape inputs to every simulator
(tests/test_conformance.py).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from nonvon import datasets
from nonvon.cli import run as run_cli
from nonvon.energy_models import OpLedger
from nonvon.errors import ConfigError, DataError, NonvonError, UnknownNameError
from nonvon.idx import write_idx
from nonvon.result import Result
from nonvon.sweep import Grid, run_sweep
from nonvon.tasks import Task


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def assert_cli_refuses(args: list[str], message: str, capsys, folder: Path) -> str:
    """Exit code 2, the message and a fix on stderr, and no new file under ``folder``."""
    before = tree(folder)
    assert run_cli(*args) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "fix:" in err, err
    assert tree(folder) == before, "something was written"
    return err


# -- sweep grids (TOML) through the CLI --------------------------------------------------------
GOOD = '''tasks = ["digits"]
seeds = [0]
[[simulators]]
name = "gpu-mlp"
set = { epochs = 1, device = "cpu" }
'''

BAD_GRIDS = {
    "not-toml": ('tasks = ["digits"\n', "is not valid TOML"),
    "binary": (b"\x80\x04\x95\x00\x00garbage", "is not valid TOML"),
    "typo-top-key": (GOOD.replace("seeds = [0]", "seed = [0]"), "did you mean 'seeds'"),
    "no-tasks": (GOOD.replace('tasks = ["digits"]', "tasks = []"), "no tasks"),
    "no-simulators": ('tasks = ["digits"]\n', "no simulators"),
    "unknown-task": (GOOD.replace('"digits"', '"digts"'), "unknown task 'digts'"),
    "unknown-simulator": (GOOD.replace('"gpu-mlp"', '"gpu-mpl"'), "did you mean 'gpu-mlp'"),
    "unknown-option": (GOOD.replace("epochs = 1", "epoch = 1"), "has no config option(s) ['epoch']"),
    "out-of-range-option": (GOOD.replace("epochs = 1", "epochs = 0"), "epochs=0"),
    "grid-not-a-list": (GOOD + "grid = { lr = 0.1 }\n", "grid.lr = 0.1 must be a non-empty list"),
    "grid-empty": (GOOD + "grid = { lr = [] }\n", "must be a non-empty list"),
    "set-and-grid": (GOOD + "grid = { epochs = [1, 2] }\n", "both fixed (set) and swept (grid)"),
    "sim-typo-key": (GOOD + "grids = { lr = [0.1] }\n", "did you mean 'grid'"),
    "negative-seed": (GOOD.replace("seeds = [0]", "seeds = [-1]"), "seeds = [-1]"),
    "string-seed": (GOOD.replace("seeds = [0]", 'seeds = ["0"]'), "seeds = ['0']"),
    "repeated-seed": (GOOD.replace("seeds = [0]", "seeds = [1, 1]"), "repeats a seed"),
    "unknown-preset": (GOOD.replace("seeds = [0]", 'seeds = [0]\npresets = ["cmos-4nm"]'),
                       "unknown preset 'cmos-4nm'"),
    "quick-not-bool": (GOOD.replace("seeds = [0]", 'seeds = [0]\nquick = "yes"'),
                       "must be true or false"),
    "task-typo-transform": (GOOD.replace('tasks = ["digits"]',
                                         'tasks = [{ name = "digits", downsampel = 4 }]'),
                            "did you mean 'downsample'"),
    "task-no-name": (GOOD.replace('tasks = ["digits"]', "tasks = [{ downsample = 4 }]"),
                     "has no name"),
    "subset-too-big": (GOOD.replace('tasks = ["digits"]',
                                    'tasks = [{ name = "digits", subset = [99999, 10] }]'),
                       "exceeds the 1437 samples"),
    "subset-malformed": (GOOD.replace('tasks = ["digits"]',
                                      'tasks = [{ name = "digits", subset = "half" }]'),
                         "subset = 'half'"),
    "cnn-on-vectors": ('tasks = [{ name = "digits", pca = 8 }]\nsimulators = ["gpu-cnn"]\n',
                       "takes ('image',) inputs"),
    "duplicate-cell": (GOOD + '\n[[simulators]]\nname = "gpu-mlp"\n'
                       'set = { epochs = 1, device = "cpu" }\n', "is listed twice"),
}


@pytest.mark.parametrize("name", sorted(BAD_GRIDS))
def test_bad_grid(name, tmp_path, capsys):
    text, message = BAD_GRIDS[name]
    grid = tmp_path / "grid.toml"
    grid.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert_cli_refuses(["sweep", str(grid), "--out", str(tmp_path / "out"), "--no-progress"],
                       message, capsys, tmp_path)


def test_grid_names_where_the_problem_is(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text(GOOD + '\n[[simulators]]\nname = "gpu-cnn"\nset = { dropout = 1.5 }\n')
    err = assert_cli_refuses(["sweep", str(grid), "--out", str(tmp_path / "o")], "dropout=1.5",
                             capsys, tmp_path)
    assert "simulators[1] (gpu-cnn)" in err and str(grid) in err


def test_grid_preset_that_cannot_price_the_simulator(tmp_path, capsys):
    preset = tmp_path / "adder.toml"
    preset.write_text('name = "adder"\nparadigms = ["gpu"]\nboundary = "core"\n'
                      '[absent]\nmemory = "test fixture: register-only datapath"\n'
                      '[ops.add_fp32]\nenergy_pj = 0.9\nsource = "test fixture, not a real device"\n')
    grid = tmp_path / "grid.toml"
    grid.write_text(GOOD.replace("seeds = [0]", 'seeds = [0]\npresets = ["adder.toml"]'))
    assert_cli_refuses(["sweep", str(grid), "--out", str(tmp_path / "o")],
                       "none of the presets", capsys, tmp_path)


def test_grid_with_a_malformed_preset_file(tmp_path, capsys):
    preset = tmp_path / "neg.toml"
    preset.write_text('name = "neg"\nparadigms = ["gpu"]\n[ops.add_fp32]\nenergy_pj = -1.0\n'
                      'source = "x"\n')
    grid = tmp_path / "grid.toml"
    grid.write_text(GOOD.replace("seeds = [0]", 'seeds = [0]\npresets = ["neg.toml"]'))
    assert_cli_refuses(["sweep", str(grid), "--out", str(tmp_path / "o")],
                       "not a finite non-negative number", capsys, tmp_path)


@pytest.mark.parametrize("target, message", [("missing.toml", "does not exist"),
                                             (".", "cannot read grid file")],
                         ids=["missing", "directory"])
def test_unreadable_grid(target, message, tmp_path, capsys):
    assert_cli_refuses(["sweep", str(tmp_path / target), "--out", str(tmp_path / "o")], message,
                       capsys, tmp_path)


# -- sweep options ------------------------------------------------------------------------------
@pytest.mark.parametrize("extra, message", [
    (["--jobs", "0"], "'0' is not a positive integer"),
    (["--threads", "-2"], "'-2' is not a positive integer"),
    (["--executor", "dask"], "invalid choice: 'dask'"),
    (["--address", "auto"], "is for the Ray executor"),
], ids=["jobs", "threads", "executor", "address-without-ray"])
def test_bad_sweep_options(extra, message, tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text(GOOD)
    assert_cli_refuses(["sweep", str(grid), "--out", str(tmp_path / "o"), *extra], message,
                       capsys, tmp_path)


def test_output_folder_that_is_a_file(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text(GOOD)
    (tmp_path / "o").write_text("precious")
    assert_cli_refuses(["sweep", str(grid), "--out", str(tmp_path / "o")], "is a file", capsys,
                       tmp_path)
    assert (tmp_path / "o").read_text() == "precious"


def test_ray_executor_without_ray(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    grid = tmp_path / "grid.toml"
    grid.write_text(GOOD)
    assert_cli_refuses(["sweep", str(grid), "--out", str(tmp_path / "o"), "--executor", "ray"],
                       "needs Ray, which is not installed", capsys, tmp_path)


# -- data loaders through the CLI: corrupt files in --data-dir ---------------------------------
def fake_mnist(folder: Path) -> dict[str, Path]:
    """Four small MNIST-shaped IDX files (not the real ones: their checksums do not match)."""
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": (np.arange(20) % 10).astype(np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": (np.arange(10) % 10).astype(np.uint8)}
    return {name: write_idx(folder / "mnist" / name, a) for name, a in arrays.items()}


def trust(monkeypatch, paths: dict[str, Path]) -> None:
    """Pin the checksums to these files, so the damage is what the loader meets."""
    for name, path in paths.items():
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        monkeypatch.setitem(datasets.SHA256["mnist"], name, hashlib.sha256(raw).hexdigest())


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:-100])


def _bad_magic(p: Path) -> None:
    p.write_bytes(b"\x00\x00\x08\x07" + p.read_bytes()[4:])


def _corrupt_gzip(p: Path) -> None:
    gz = p.with_name(p.name + ".gz")
    gz.write_bytes(gzip.compress(p.read_bytes())[:200])
    p.unlink()


@pytest.mark.parametrize("damage, pin, message", [
    (_truncate, True, "is truncated"),
    (_bad_magic, True, "bad magic number 0x00000807"),
    (_corrupt_gzip, False, "is not a valid gzip stream"),
    (None, False, "is not the standard mnist file"),
], ids=["truncated", "wrong-magic", "corrupt-gzip", "checksum-mismatch"])
@pytest.mark.parametrize("command", ["compare", "sweep"])
def test_corrupt_data_files(command, damage, pin, message, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NONVON_DATA", raising=False)
    data = tmp_path / "data"
    paths = fake_mnist(data)
    if pin:
        # Checksums pinned to the damaged file: the loader's own checks must catch it.
        target = paths["train-images-idx3-ubyte"]
        damage(target)
        trust(monkeypatch, paths)
    elif damage is not None:
        damage(paths["train-images-idx3-ubyte"])
    out = tmp_path / "out"
    if command == "compare":
        args = ["compare", "--task", "mnist", "--sim", "gpu-mlp", "--data-dir", str(data),
                "--out", str(out), "--no-progress"]
    else:
        grid = tmp_path / "grid.toml"
        grid.write_text(GOOD.replace('"digits"', '"mnist"'))
        args = ["sweep", str(grid), "--data-dir", str(data), "--out", str(out)]
    assert_cli_refuses(args, message, capsys, tmp_path)


def test_missing_data_dir(tmp_path, capsys):
    assert_cli_refuses(["compare", "--task", "mnist", "--sim", "gpu-mlp", "--data-dir",
                        str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")],
                       "data folder", capsys, tmp_path)


# -- the Python API ---------------------------------------------------------------------------
def _task(**changes):
    rng = np.random.default_rng(0)
    kw = dict(name="t", x_train=rng.random((6, 4, 4), dtype=np.float32),
              y_train=np.arange(6) % 3, x_test=rng.random((3, 4, 4), dtype=np.float32),
              y_test=np.arange(3), n_classes=3)
    return Task(**{**kw, **changes})


def _nan_x():
    x = np.zeros((6, 4, 4), np.float32)
    x[2, 1, 1] = np.nan
    return x


@pytest.mark.parametrize("changes, message", [
    ({"x_train": _nan_x()}, "contains NaN or inf"),
    ({"x_train": np.zeros((6, 1, 4, 4), np.float32)}, "has shape (6, 1, 4, 4)"),
    ({"x_train": np.zeros((6, 4, 4), np.float64)}, "must be a float32 NumPy array"),
    ({"y_train": np.array([0, 1, 2, 3, 0, 1])}, "labels outside [0, 3)"),
    ({"y_train": np.array([0, 1, -1, 0, 1, 2])}, "labels outside [0, 3)"),
    ({"y_train": np.arange(5) % 3}, "y_train has shape (5,) for 6 samples"),
    ({"x_test": np.zeros((3, 5, 5), np.float32)}, "differ in shape"),
], ids=["nan", "rank", "dtype", "label-too-big", "label-negative", "label-count", "split-shapes"])
def test_bad_task_arrays(changes, message):
    with pytest.raises(DataError) as e:
        _task(**changes)
    assert message in str(e.value) and e.value.hint


@pytest.mark.parametrize("totals, n, error, message", [
    ({"mac_fp33": 1}, 1, UnknownNameError, "unknown op kind 'mac_fp33'"),
    ({"mac_fp32": -1}, 1, ConfigError, "counts are finite and >= 0"),
    ({"mac_fp32": math.nan}, 1, ConfigError, "counts are finite and >= 0"),
    ({"mac_fp32": math.inf}, 1, ConfigError, "counts are finite and >= 0"),
    ({"mac_fp32": 2.5}, 1, ConfigError, "not a whole number"),
    ({"mac_fp32": 1}, 0, ConfigError, "must be a positive int"),
], ids=["unknown-kind", "negative", "nan", "inf", "fractional", "no-inferences"])
def test_bad_ledgers(totals, n, error, message):
    with pytest.raises(error, match=None) as e:
        OpLedger(totals, n)
    assert message in str(e.value)


def test_unknown_simulator_name_suggests_the_closest(reg):
    with pytest.raises(UnknownNameError) as e:
        reg.simulator("gpu-cn")
    assert "did you mean 'gpu-cnn'" in str(e.value)


def test_out_of_range_evaluate_limit_and_split(reg, digits_task):
    sim = reg.simulator("gpu-mlp", epochs=1, hidden=(8,), device="cpu").fit(digits_task)
    with pytest.raises(ConfigError, match="limit=0 must be a positive integer"):
        sim.evaluate(digits_task, limit=0)
    with pytest.raises(ConfigError, match="unknown split 'validation'"):
        sim.evaluate(digits_task, split="validation")


def test_malformed_result_record():
    with pytest.raises(DataError, match="malformed result record") as e:
        Result.from_dict({"task": "digits"})
    assert "delete it and rerun" in str(e.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"executor": "dask"}, "unknown executor 'dask'"),
    ({"jobs": 0}, "jobs=0 must be a positive integer"),
    ({"threads": 1.5}, "threads=1.5 must be a positive integer"),
    ({"address": "auto"}, "is for the Ray executor"),
    ({"out_dir": None}, "no output folder"),
], ids=["executor", "jobs", "threads", "address", "no-out"])
def test_bad_run_sweep_arguments(kwargs, message, tmp_path):
    grid = {"tasks": ["digits"], "simulators": ["gpu-mlp"]}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        run_sweep(grid, **{"out_dir": tmp_path / "o", **kwargs}, progress=False)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("data, message", [
    (["digits"], "expected a table"),
    ({"tasks": "digits", "simulators": [42]}, "expected a simulator name or a table, got 42"),
    ({"tasks": [3], "simulators": ["gpu-mlp"]}, "expected a task name or a table, got 3"),
    ({"tasks": "digits", "simulators": [{"name": "gpu-mlp", "set": [1]}]},
     "set must be a table of options"),
], ids=["not-a-table", "simulator-entry", "task-entry", "set-not-a-table"])
def test_bad_grid_structures_in_python(data, message):
    with pytest.raises(NonvonError) as e:
        Grid.from_dict(data)
    assert message in str(e.value)


def test_preset_with_static_power_but_no_timing_is_refused_before_training(tmp_path, capsys):
    # a copy of a core price list with static power added: nothing it prices has a time_s
    base = Path(__file__).parents[1] / "energy_models" / "presets" / "cmos-45nm.toml"
    preset = tmp_path / "leaky.toml"
    preset.write_text(base.read_text().replace('name = "cmos-45nm"', 'name = "leaky"')
                      + '\n[static]\npower_w = 0.5\nsource = "test fixture, not a real device"\n')
    err = assert_cli_refuses(["compare", "--task", "digits", "--sim", "gpu-mlp", "--preset",
                              str(preset), "--out", str(tmp_path / "o")],
                             "no latency exists to charge it over", capsys, tmp_path)
    assert "leaky.toml" in err and "time_s" in err
