"""Untrusted files: nothing nonvon loads can run code (no pickle; TOML and JSON only).

Two halves. A scan of the project's own source proves there is no unpickling to exploit
(no pickle-family imports, ``torch.load`` only with ``weights_only=True``, no
``allow_pickle=True``, no ``eval``/``exec``). Then crafted pickles, whose unpickling
would create a marker file, are fed to every loader: each must refuse the file with a
clear error, and the marker must never appear.
"""

from __future__ import annotations

import ast
import json
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from nonvon._io import decode_tensors
from nonvon.cli import run as run_cli
from nonvon.energy_models import load_preset
from nonvon.errors import NonvonError
from nonvon.result import Result
from nonvon.sweep import Grid, load_grid, plan_sweep, run_sweep
from nonvon.testing import CellCache

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("nonvon", "simulators", "models", "energy_models", "studies", "benchmarks",
               "docs")
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve",
                  "marshal", "pickletools"}
QUIET = {"progress": False, "log": lambda m: None}


def project_sources() -> list[Path]:
    files = [p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 20, "the scan found too few files to mean anything"
    return files


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value.value if isinstance(k.value, ast.Constant) else "<expr>"
    return None


def violations(path: Path, source: str | None = None) -> list[str]:
    out = []
    text = path.read_text(encoding="utf-8") if source is None else source
    for node in ast.walk(ast.parse(text, str(path))):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            out += [f"{where}: import {a.name}" for a in node.names
                    if a.name.split(".")[0] in PICKLE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
            out.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in ("eval", "exec"):
                out.append(f"{where}: {name}()")
            elif name == "torch.load" and _kw(node, "weights_only") is not True:
                out.append(f"{where}: torch.load without weights_only=True")
            elif name in ("torch.jit.load", "pd.read_pickle", "pandas.read_pickle"):
                out.append(f"{where}: {name} runs code from the file")
            elif name in ("np.load", "numpy.load") and _kw(node, "allow_pickle") not in (None, False):
                out.append(f"{where}: {name} with allow_pickle={_kw(node, 'allow_pickle')}")
            elif name == "yaml.load":
                out.append(f"{where}: yaml.load (use yaml.safe_load)")
    return out


def test_no_code_path_unpickles_or_evaluates_files():
    found = [v for p in project_sources() for v in violations(p)]
    assert not found, "\n".join(found)


def test_the_scan_catches_what_it_forbids():
    src = ("import pickle\nimport torch\nfrom joblib import load\n"
           "torch.load('m.pt')\ntorch.load('m.pt', weights_only=False)\n"
           "torch.load('m.pt', weights_only=True)\nimport numpy as np\n"
           "np.load('a.npz', allow_pickle=True)\nnp.load('a.npz')\neval('1')\n")
    found = violations(ROOT / "nonvon" / "probe.py", src)  # a string: no file is written
    assert len(found) == 6, found  # the weights_only=True and default np.load calls are fine


# -- crafted pickles --------------------------------------------------------------------------
class Payload:
    """Unpickling this calls ``open(marker, "w")``: the marker file proves code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(params=[0, 4], ids=["ascii-pickle", "binary-pickle"])
def crafted(request, tmp_path):
    """``(write(path), marker)``: write a pickle bomb to ``path``."""
    marker = tmp_path / "PWNED"
    blob = pickle.dumps(Payload(marker), protocol=request.param)
    assert not marker.exists()

    def write(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
        return path

    write.binary = request.param > 0
    return write, marker


def _decode_bug_present() -> bool:
    """Result.load on a non-UTF-8 file: UnicodeDecodeError (the bug) or DataError (fixed)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "binary.json"
        path.write_bytes(b"\x80\x04binary")
        try:
            Result.load(path)
        except UnicodeDecodeError:
            return True
        except NonvonError:
            return False
    return False


# Result.load and compare.load_rows catch JSON errors but not UnicodeDecodeError, so a binary
# file makes `nonvon energy` / `nonvon report` / a resumed compare end in a traceback (exit 1)
# instead of a clear error (no code runs either way). The fix (catch UnicodeDecodeError with
# the JSON errors in nonvon/result.py and nonvon/compare.py) is reported for the core; until
# it lands these binary cases are expected failures, after it they run as ordinary tests.
NEEDS_DECODE_FIX = pytest.mark.xfail(_decode_bug_present(), strict=True, raises=UnicodeDecodeError,
                                     reason="core fix pending: Result.load / load_rows on binary files")


def _maybe_xfail(request, crafted):
    if crafted[0].binary:
        request.applymarker(NEEDS_DECODE_FIX)


def test_result_load_refuses_a_pickle(crafted, tmp_path, request):
    _maybe_xfail(request, crafted)
    write, marker = crafted
    with pytest.raises(NonvonError, match="not valid JSON"):
        Result.load(write(tmp_path / "cell.json"))
    assert not marker.exists()


def test_energy_refuses_a_pickled_result(crafted, tmp_path, capsys, request):
    _maybe_xfail(request, crafted)
    write, marker = crafted
    assert run_cli("energy", str(write(tmp_path / "r.json")), "--preset", "cmos-7nm") == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert not marker.exists()


def test_report_refuses_a_pickled_results_folder(crafted, tmp_path, capsys, request):
    _maybe_xfail(request, crafted)
    write, marker = crafted
    write(tmp_path / "res" / "results.json")
    assert run_cli("report", str(tmp_path / "res")) == 2
    assert "is not a nonvon results file" in capsys.readouterr().err
    assert not marker.exists()
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["results.json"]


def test_preset_and_grid_loaders_refuse_a_pickle(crafted, tmp_path):
    write, marker = crafted
    with pytest.raises(NonvonError, match="not valid TOML"):
        load_preset(write(tmp_path / "evil.toml"))
    with pytest.raises(NonvonError, match="not valid TOML"):
        load_grid(write(tmp_path / "grid.toml"))
    assert not marker.exists()


def test_sweep_resume_and_pytest_cache_refuse_a_pickled_cell(crafted, tmp_path, reg):
    write, marker = crafted
    grid = {"tasks": ["digits"], "presets": ["cmos-45nm"],
            "simulators": [{"name": "gpu-mlp", "set": {"epochs": 1, "hidden": [8], "device": "cpu"}}]}
    (cell,) = plan_sweep(Grid.from_dict(grid), reg).cells
    write(tmp_path / "out" / "cache" / f"{cell.key}.json")
    with pytest.raises(NonvonError, match="is not a JSON file written by nonvon") as e:
        run_sweep(grid, out_dir=tmp_path / "out", executor="inline", **QUIET)
    assert "delete it" in str(e.value)
    write(tmp_path / "pc" / f"{cell.key}.json")
    with pytest.raises(NonvonError, match="is not a JSON file written by nonvon"):
        CellCache(tmp_path / "pc").result(cell)
    assert not marker.exists()


def test_torch_load_with_weights_only_refuses_a_crafted_checkpoint(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "model.pt"
    torch.save({"weight": torch.zeros(2), "extra": Payload(marker)}, path)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        torch.load(path, weights_only=True)
    assert not marker.exists()
    # A plain checkpoint of tensors loads fine the same way.
    torch.save({"weight": torch.arange(3.0)}, tmp_path / "ok.pt")
    assert torch.load(tmp_path / "ok.pt", weights_only=True)["weight"].tolist() == [0, 1, 2]


def test_numpy_refuses_object_arrays(tmp_path):
    marker = tmp_path / "PWNED"
    np.save(tmp_path / "evil.npy", np.array([Payload(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle=False"):
        np.load(tmp_path / "evil.npy")
    assert not marker.exists()


def test_results_files_are_plain_json(tmp_path):
    grid = {"tasks": ["digits"], "presets": ["cmos-45nm"],
            "simulators": [{"name": "gpu-mlp", "set": {"epochs": 1, "hidden": [8], "device": "cpu"}}]}
    run_sweep(grid, out_dir=tmp_path, executor="inline", write_report=False, **QUIET)
    for path in [*tmp_path.rglob("*.json")]:
        json.loads(path.read_text(encoding="utf-8"))  # strict JSON, UTF-8, nothing else
    # trained parameters beside the cells are safetensors: data only, never pickle
    stored = [*tmp_path.rglob("*.safetensors")]
    assert stored, "the cell's trained parameters were not stored"
    for path in stored:
        assert all(hasattr(v, "shape") for v in decode_tensors(path.read_bytes()).values())
    assert {p.suffix for p in tmp_path.rglob("*") if p.is_file()} <= {".json", ".lock", ".safetensors"}
