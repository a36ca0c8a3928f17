"""Sweep-aware reports: config and seed columns, mean ± sd over seeds, error bars, SVG and
PDF figures, the grid's description as the title."""

from __future__ import annotations

import csv
import io
import json
import statistics

import pytest

from nonvon import report
from nonvon.cells import rows_to_csv
from nonvon.energy_models import OpLedger
from nonvon.errors import ConfigError
from nonvon.report import seed_summary, write_report
from nonvon.result import Result


def _rows(reg):
    """gpu-mlp in two configs x three seeds on two presets; accuracies and op counts differ
    by seed (as they do when training is seeded), so the spread is known."""
    rows = []
    presets = [reg.presets["cmos-7nm"], reg.presets["npu-7nm"]]
    for label, hidden, base in (("hidden=64", 64, 0.90), ("hidden=256", 256, 0.95)):
        for seed in (0, 1, 2):
            totals = {"mac_fp32": 1000 * hidden * (10 + seed), "add_fp32": 1000,
                      "cmp_fp32": 1000, "sram_byte": 4000 * hidden, "kernel_launch": 20,
                      "host_transfer_byte": 2000}
            res = Result(task="digits", simulator="gpu-mlp", paradigm="gpu", seed=seed,
                         accuracy=base + 0.01 * seed, n_evaluated=10,
                         ledger=OpLedger(totals, n_inferences=10, resident_bytes=4.0 * hidden),
                         sim_wall_s=0.1, fit_wall_s=0.2, n_params=100 * hidden,
                         config={"hidden": [hidden]}, data_source="synthetic")
            for p in presets:
                rows.append({**res.priced(p).modelled_row(), "config_label": label,
                             "config": {"hidden": [hidden]}, "cell": f"{label}-{seed}"})
    return rows


@pytest.fixture(scope="module")
def rows(reg):
    return _rows(reg)


def test_seed_summary_keeps_configs_apart_and_gives_mean_and_sd(rows):
    summary = seed_summary(rows)
    assert len(summary) == 4  # 2 configs x 2 presets
    for s in summary:
        assert s["n_seeds"] == 3 and s["seeds"] == [0, 1, 2]
        mine = [r for r in rows if f"gpu-mlp[{r['config_label']}]" == s["simulator"]
                and r["preset"] == s["preset"]]
        acc = [r["accuracy"] for r in mine]
        energy = [r["energy_per_inference_j"] for r in mine]
        assert s["accuracy"] == pytest.approx(statistics.fmean(acc))
        assert s["accuracy_sd"] == pytest.approx(statistics.stdev(acc)) and s["accuracy_sd"] > 0
        assert s["energy_per_inference_j"] == pytest.approx(statistics.fmean(energy))
        assert s["energy_sd_j"] == pytest.approx(statistics.stdev(energy))
        assert sum(s["energy_by_class_j"].values()) == pytest.approx(s["energy_per_inference_j"])
    assert {s["simulator"] for s in summary} == {"gpu-mlp[hidden=64]", "gpu-mlp[hidden=256]"}


def test_one_seed_gives_no_spread_and_no_across_seeds_table(rows):
    one = [r for r in rows if r["seed"] == 0]
    assert all(s["accuracy_sd"] == 0.0 and s["n_seeds"] == 1 for s in seed_summary(one))
    assert report._seeds_table(one) == ([], [])


def test_csv_has_config_and_seed_columns(rows):
    table = list(csv.DictReader(io.StringIO(rows_to_csv(rows))))
    assert {(t["config_label"], t["seed"]) for t in table} == {
        (c, s) for c in ("hidden=64", "hidden=256") for s in ("0", "1", "2")}
    assert json.loads(table[0]["config"]) == {"hidden": [64]}


@pytest.mark.vector_figures
def test_report_shows_configs_seeds_mean_sd_error_bars_svg_and_pdf(rows, tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    yerrs = []
    real = Axes.errorbar

    def spy(self, *a, **kw):
        yerrs.append(kw.get("yerr"))
        return real(self, *a, **kw)

    monkeypatch.setattr(Axes, "errorbar", spy)
    for name in ("energy_breakdown_png", "latency_png"):  # drawn the same way; kept fast
        monkeypatch.setattr(report, name, lambda rows: report._empty_png("not drawn here"))
    write_report(rows, tmp_path)
    md = (tmp_path / "report.md").read_text()
    all_results = md.split("## All results")[1]
    assert "| task | simulator | config | seed |" in all_results
    assert "| gpu-mlp | hidden=256 | 2 |" in all_results
    seeds = md.split("## Across seeds")[1].split("## ")[0]
    s = next(x for x in seed_summary(rows) if x["simulator"] == "gpu-mlp[hidden=64]"
             and x["preset"] == "npu-7nm")
    assert (f"| gpu-mlp[hidden=64] | npu-7nm | chip | 3 (0, 1, 2) | "
            f"{100 * s['accuracy']:.2f}% ± {100 * s['accuracy_sd']:.2f}% |") in seeds
    headline = md.split("## Headline at the chip boundary")[1].split("## ")[0]
    assert "gpu-mlp[hidden=64]" in headline and "gpu-mlp[hidden=256]" in headline and "±" in headline
    # one point per config and preset (not per seed), each with its accuracy's sd as error bar
    assert sorted(round(y, 6) for y in yerrs if y) == sorted(
        round(100 * x["accuracy_sd"], 6) for x in seed_summary(rows))
    for name in ("accuracy_vs_energy", "energy_breakdown", "latency"):
        svg = (tmp_path / f"{name}.svg").read_bytes()
        assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg[:2000]
        pdf = (tmp_path / f"{name}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
        assert b"/CreationDate" not in pdf and b"<dc:date>" not in svg
    assert b"hidden=64" in (tmp_path / "accuracy_vs_energy.svg").read_bytes()  # legend
    assert "hidden=256" in (tmp_path / "report.html").read_text()


@pytest.mark.vector_figures
def test_vector_figures_are_the_same_bytes_when_drawn_again():
    """Rerunning a report must not churn its committed SVG and PDF files."""
    first, second = report._empty_png("drawn twice"), report._empty_png("drawn twice")
    assert first.pdf and first.svg
    assert (first.pdf, first.svg) == (second.pdf, second.svg)


def _heading(folder):
    """The title of report.md and of report.html (its <title> and <h1>, which must agree)."""
    md = (folder / "report.md").read_text().splitlines()[0]
    page = (folder / "report.html").read_text()
    title = page.split("<title>")[1].split("</title>")[0]
    assert page.split("<h1>")[1].split("</h1>")[0] == title
    return md, title


def test_a_sweeps_description_titles_its_report_and_a_compare_keeps_its_own(
        tmp_path, monkeypatch):
    from nonvon.cli import run as run_cli
    from nonvon.compare import compare
    from nonvon.sweep import run_sweep

    for name in ("accuracy_vs_energy_png", "energy_breakdown_png", "latency_png"):
        monkeypatch.setattr(report, name, lambda rows: report._empty_png("not drawn here"))
    mlp = {"hidden": [8], "batch_size": 64, "epochs": 1, "device": "cpu"}
    grid = {"description": "  Width <8> on digits\nwhy: a test of the title", "tasks": ["digits"],
            "presets": ["cmos-45nm"], "simulators": [{"name": "gpu-mlp", "set": mlp}]}
    quiet = {"progress": False, "log": lambda m: None}
    out = tmp_path / "out"
    run_sweep(grid, out_dir=out, executor="inline", **quiet)
    assert _heading(out) == ("# Width <8> on digits", "Width &lt;8&gt; on digits")
    assert json.loads((out / "results.json").read_text())["title"] == "Width <8> on digits"
    (out / "report.md").unlink()
    assert run_cli("report", str(out)) == 0  # rebuilt from the folder: the title stays
    assert _heading(out)[0] == "# Width <8> on digits"

    # a compare into the same folder reuses the cell and keeps compare's title
    compare(["digits"], ["gpu-mlp"], presets=["cmos-45nm"], out_dir=out,
            overrides={"gpu-mlp": {**mlp, "hidden": (8,)}}, **quiet)
    assert _heading(out) == (f"# {report.DEFAULT_TITLE}", report.DEFAULT_TITLE)
    assert "title" not in json.loads((out / "results.json").read_text())


def test_a_title_that_is_not_a_string_is_refused_naming_the_file(tmp_path):
    from nonvon.cells import load_title
    from nonvon.errors import DataError
    from nonvon.grids import Grid

    (tmp_path / "results.json").write_text(json.dumps({"schema": 1, "rows": [], "title": [1]}))
    with pytest.raises(DataError, match=r"results\.json, title: is a list, not a string"):
        load_title(tmp_path)
    assert load_title(tmp_path / "absent") is None
    with pytest.raises(ConfigError, match="description must be a string"):
        Grid.from_dict({"description": 3, "tasks": ["digits"], "simulators": ["gpu-mlp"]})
    assert Grid.from_dict({"description": " \n", "tasks": ["digits"],
                           "simulators": ["gpu-mlp"]}).title is None
