"""Sweep-aware reports: config and seed columns, mean ± sd over seeds, error bars, SVG."""

from __future__ import annotations

import csv
import io
import json
import statistics

import pytest

from nonvon import report
from nonvon.cells import rows_to_csv
from nonvon.energy_models import OpLedger
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


def test_report_shows_configs_seeds_mean_sd_error_bars_and_svg(rows, tmp_path, monkeypatch):
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
    assert b"hidden=64" in (tmp_path / "accuracy_vs_energy.svg").read_bytes()  # legend
    assert "hidden=256" in (tmp_path / "report.html").read_text()
