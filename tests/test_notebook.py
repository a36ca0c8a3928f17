"""Habits of the ecosystem: a typed package, results as Jupyter tables and pandas frames, and
the notebook example (docs/examples/notebook.py) run cell by cell as Jupyter would."""

from __future__ import annotations

import builtins
import contextlib
import html
import io
import json
import re
import sys
from importlib import resources
from pathlib import Path

import pytest

import nonvon
from nonvon.cells import csv_columns, write_results
from nonvon.energy_models import OpLedger
from nonvon.errors import ConfigError
from nonvon.result import Measurement, Result
from nonvon.tables import ResultsTable


def _result(**kw):
    return Result(**{"task": "digits", "simulator": "gpu-mlp", "paradigm": "gpu", "seed": 3,
                     "accuracy": 0.875, "n_evaluated": 10,
                     "ledger": OpLedger({"mac_fp32": 12_345_000, "add_fp32": 10_000,
                                         "cmp_fp32": 10_000, "sram_byte": 40_000,
                                         "kernel_launch": 20, "host_transfer_byte": 2000}, 10),
                     "sim_wall_s": 0.1, "fit_wall_s": 0.2, "n_params": 100, "config": {},
                     "data_source": "synthetic", **kw})


def test_the_package_is_marked_typed():
    assert resources.files("nonvon").joinpath("py.typed").is_file()


def test_a_priced_result_shows_as_a_table_and_a_dataframe(reg):
    pytest.importorskip("pandas")
    r = _result(measurements=(Measurement("nvml-fp32-b1", 5e-4, 1e-4, 1),)).priced(
        reg.presets["cmos-7nm"])
    page = r._repr_html_()
    assert page.startswith("<table>") and "<td>cmos-7nm</td>" in page and "<td>3</td>" in page
    assert "nvml-fp32-b1" in page and "87.50%" in page
    df = r.to_pandas()
    assert list(df["preset"]) == ["cmos-7nm", "nvml-fp32-b1"]
    assert df["energy_per_inference_j"].iloc[0] == pytest.approx(r.energy.energy_j)
    assert df["energy_compute_j"].iloc[0] == pytest.approx(r.energy.energy_by_class_j["compute"])
    assert list(df.columns[:4]) == [c for c in csv_columns() if c in df.columns][:4]


def test_an_unpriced_result_shows_its_ops_and_markup_is_escaped():
    r = _result(simulator="<b>sim</b>")
    page = r._repr_html_()
    assert html.escape("<b>sim</b>") in page and "<b>" not in page
    assert "mac_fp32 1.234e+06" in page  # per inference, largest first
    pytest.importorskip("pandas")
    assert r.to_pandas()["kind"].tolist() == ["unpriced"]


def test_a_results_folder_loads_as_a_table(reg, tmp_path):
    pytest.importorskip("pandas")
    rows = [_result(seed=s).priced(reg.presets[p]).modelled_row() for s in (0, 1)
            for p in ("cmos-7nm", "npu-7nm")]
    write_results(rows, tmp_path, report=False)
    table = nonvon.ResultsTable.load(tmp_path)
    assert len(table) == 4 and "4 rows" in repr(table)
    assert table._repr_html_().count("<tr>") == 5  # header and four rows
    df = table.to_pandas()
    assert df.shape[0] == 4 and set(df["seed"]) == {0, 1}
    on_disk = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert list(df["energy_per_inference_j"]) == [r["energy_per_inference_j"] for r in on_disk]


def test_to_pandas_without_pandas_says_how_to_get_it(monkeypatch):
    real = builtins.__import__

    def no_pandas(name, *a, **kw):
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real(name, *a, **kw)

    monkeypatch.delitem(sys.modules, "pandas", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(ConfigError, match="needs pandas") as e:
        ResultsTable([]).to_pandas()
    assert "pip install pandas" in e.value.hint


NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "examples" / "notebook.py"


def _cells(source: str) -> list[tuple[str, str]]:
    """The percent-format cells of ``source``: (``"markdown"`` or ``"code"``, text)."""
    parts = re.split(r"^# %%(.*)$", source, flags=re.M)
    return [("markdown" if "[markdown]" in head else "code", body)
            for head, body in zip(parts[1::2], parts[2::2], strict=True)]


def test_the_notebook_example_runs_cell_by_cell_and_shows_tables_and_a_figure(
        tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    cells = _cells(NOTEBOOK.read_text(encoding="utf-8"))
    assert not NOTEBOOK.read_text(encoding="utf-8").split("# %%")[0].strip()  # all in cells
    kinds = [k for k, _ in cells]
    assert kinds.count("markdown") >= 3 and kinds.count("code") >= 3
    for kind, body in cells:  # a markdown cell is comments only, so the script skips it
        if kind == "markdown":
            assert all(not line or line.startswith("#") for line in body.strip().splitlines())

    shown: list = []  # what Jupyter's display() is handed, after the cell that defines it
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for i, (_kind, body) in enumerate(cells):
            exec(compile(body, f"{NOTEBOOK.name}, cell {i}", "exec"), namespace)
            if "display" in namespace:
                namespace["display"] = shown.append

    folder = tmp_path / "notebook-results"
    assert {"results.json", "results.csv", "energy_by_preset.png"} <= {
        p.name for p in folder.iterdir()}
    result, table = (next(o for o in shown if isinstance(o, t)) for t in (Result, ResultsTable))
    assert "<td>cmos-7nm</td>" in result._repr_html_()
    modelled = [r for r in table.rows if r["kind"] == "modelled"]
    assert {r["simulator"] for r in modelled} == {"gpu-mlp", "hdc-projection"}
    assert table._repr_html_().count("<tr>") == len(table) + 1
    (fig,) = [o for o in shown if isinstance(o, Figure)]
    assert len(fig.axes[0].patches) == len(modelled)  # one bar per modelled row
    if "pandas" in sys.modules:
        (frame,) = [o for o in shown if type(o).__name__ == "DataFrame"]
        assert set(frame.columns) == {"gpu-mlp", "hdc-projection"}

    last = json.loads(out.getvalue().strip().splitlines()[-1])
    chip = last["chip_boundary"]
    assert set(chip) == {"gpu-mlp", "hdc-projection"}
    for sim, row in chip.items():  # well above chance (10%), priced, at the chip boundary
        assert 0.5 < row["accuracy"] <= 1 and row["energy_per_inference_j"] > 0
        match = next(r for r in modelled if r["simulator"] == sim and r["preset"] == row["preset"])
        assert match["boundary"] == "chip"
