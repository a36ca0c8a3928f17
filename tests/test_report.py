"""Report: Pareto front, physical limits, figures, the self-contained HTML page and its render."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from nonvon import report
from nonvon.cli import run as run_cli
from nonvon.energy_models import OpLedger, landauer_j
from nonvon.report import (
    FIGURES,
    SHOT_NOISE_J_PER_MAC,
    optical_macs_per_inference,
    pareto_front,
    physical_limits,
    write_report,
)
from nonvon.result import Measurement, Result

PNG = b"\x89PNG\r\n\x1a\n"


# -- Pareto front -------------------------------------------------------------------------
def test_pareto_front_on_constructed_points():
    points = [
        (1e-6, 0.90),   # 0 front: cheapest of all
        (2e-6, 0.85),   # 1 dominated by 0 (dearer and less accurate)
        (5e-6, 0.95),   # 2 front
        (5e-6, 0.93),   # 3 dominated by 2 (same energy, less accurate)
        (1e-3, 0.99),   # 4 front: most accurate
        (1e-2, 0.99),   # 5 dominated by 4 (same accuracy, dearer)
        (3e-6, 0.90),   # 6 dominated by 0 (same accuracy, dearer)
        (1e-6, 0.90),   # 7 identical to 0: the first is kept
    ]
    assert pareto_front(points) == [0, 2, 4]
    assert pareto_front([]) == []
    assert pareto_front([(1.0, 0.5)]) == [0]


def test_pareto_front_matches_brute_force_on_random_points():
    rng = np.random.default_rng(0)
    pts = [(float(e), float(a)) for e, a in zip(10 ** rng.uniform(-9, -3, 60),
                                                 rng.uniform(0.5, 1.0, 60), strict=True)]
    dominated = {i for i, (e, a) in enumerate(pts)
                 if any(e2 <= e and a2 >= a and (e2, a2) != (e, a) for e2, a2 in pts)}
    front = pareto_front(pts)
    assert set(front) == set(range(len(pts))) - dominated
    energies = [pts[i][0] for i in front]
    accuracies = [pts[i][1] for i in front]
    assert energies == sorted(energies) and accuracies == sorted(accuracies)


# -- rows built from real presets -----------------------------------------------------------
def _result(task, simulator, paradigm, accuracy, totals, n=10, config=None, measurements=(), metrics=None):
    return Result(task=task, simulator=simulator, paradigm=paradigm, seed=0, accuracy=accuracy,
                  n_evaluated=n, ledger=OpLedger(totals, n_inferences=n), sim_wall_s=0.1,
                  fit_wall_s=0.2, n_params=100, config=config or {}, data_source="synthetic",
                  measurements=tuple(measurements), metrics=metrics or {})


def _rows(reg, tasks=("task-a", "task-b")):
    mzi_config = {"photons_per_mac": 1000.0, "lo_ratio": 1.0, "wavelength_nm": 1550.0}
    photon_j = 6.62607015e-34 * 299_792_458.0 / 1550e-9
    macs = 25_856  # per inference
    rows = []
    for task in tasks:
        gpu = _result(task, "gpu-mlp", "gpu", 0.98, {"mac_fp32": 2_000_000, "add_fp32": 10_000,
                                                     "cmp_fp32": 10_000, "dram_byte": 8_000_000,
                                                     "kernel_launch": 30},
                      measurements=[Measurement("nvml-fp32-b1024", 1.8e-5, 1.6e-7, 1024,
                                                {"device": "test GPU"}),
                                    Measurement("nvml-fp32-b1", 5.4e-4, 1.3e-4, 1,
                                                {"device": "test GPU"})])
        hdc = _result(task, "hdc-projection", "hdc", 0.95, {"xor_bit": 10_000_000,
                                                            "popcount_bit": 10_000_000,
                                                            "hv_read_bit": 20_000_000,
                                                            "add_int32": 100_000,
                                                            "sram_byte": 100_000})
        zj = round(10 * macs * 1000.0 * 2 * photon_j / 1e-21)
        onn = _result(task, "onn-mzi", "optical", 0.97,
                      {k: v for k, v in {"laser_optical_zj": zj, "optical_pass": 30,
                                         "modulator_symbol": 3_200, "photodetector_read": 2_660,
                                         "phase_shifter_hold": 20_000, "mac_int32": 2_660,
                                         "cmp_int32": 2_650, "sram_byte": 10_000}.items()},
                      config=mzi_config, metrics={"optical_macs_per_inference": float(macs)})
        for res in (gpu, hdc, onn):
            for p in reg.presets_for(res.paradigm, res.ledger.totals):
                rows.append({**res.priced(p).modelled_row(), "sim_config": res.config})
            rows += res.measured_rows()
    return rows


@pytest.fixture(scope="module")
def rows(reg):
    return _rows(reg)


@pytest.fixture(scope="module")
def report_dir(rows, tmp_path_factory):
    """The report of the rows above, rendered once for the tests that read it."""
    out = tmp_path_factory.mktemp("report")
    write_report(rows, out)
    return out


@pytest.fixture
def no_figures(monkeypatch):
    """Tests of the pages alone skip drawing (a tiny PNG stands in for each figure)."""
    import base64

    tiny = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAA"
                            "AgABSK+kcQAAAABJRU5ErkJggg==")
    for name in ("accuracy_vs_energy_png", "energy_breakdown_png", "latency_png"):
        monkeypatch.setattr(report, name, lambda rows: tiny)


def test_physical_limits_per_task(rows):
    task_rows = [r for r in rows if r["task"] == "task-a"]
    lim = physical_limits(task_rows)
    digital = [landauer_j(r["ledger"]) for r in task_rows
               if r["kind"] == "modelled" and r["paradigm"] != "optical"]
    assert lim["landauer"]["energy_j"] == pytest.approx(min(digital))
    # the optical bound is 50 zJ per MAC of the network that ran (the MAC count it reports)
    assert lim["shot_noise"]["simulator"] == "onn-mzi"
    assert lim["shot_noise"]["macs"] == pytest.approx(25_856, rel=1e-6)
    assert lim["shot_noise"]["energy_j"] == pytest.approx(25_856 * SHOT_NOISE_J_PER_MAC, rel=1e-6)
    # a simulator that reports its MAC count is taken at its word; without it: no bound (the
    # core reads no plugin's config to recover one)
    assert optical_macs_per_inference({"metrics": {"optical_macs_per_inference": 7.0}}) == 7.0
    assert optical_macs_per_inference({"ledger": {"laser_optical_zj": 5.0},
                                       "sim_config": {"photons_per_mac": 1.0,
                                                      "wavelength_nm": 1550.0}}) is None


def test_headline_ranks_one_boundary_on_each_simulators_native_preset(rows, report_dir):
    from nonvon.report import headline_rows, row_boundary

    chip = headline_rows(rows, "chip")
    picked = {(r["task"], r["simulator"]): r["preset"] for r in chip}
    # one row per task and simulator at the chip boundary, on the device it stands for (never a
    # bound); gpu-h100 is a whole board (system), so gpu-mlp enters on the digital accelerator
    assert picked == {(t, s): p for t in ("task-a", "task-b") for s, p in
                      (("hdc-projection", "hdc-asic-28nm"), ("onn-mzi", "photonic-mzi"),
                       ("gpu-mlp", "npu-7nm"))}
    assert {row_boundary(r) for r in chip} == {"chip"}
    system = headline_rows(rows, "system")
    assert {(r["simulator"], r["preset"]) for r in system if r["kind"] == "modelled"} == {
        ("gpu-mlp", "gpu-h100")}
    assert sum(r["kind"] == "measured" for r in system) == 4  # both NVML rows of each task
    md = (report_dir / "report.md").read_text()
    assert md.index("## Headline at the chip boundary") < md.index("## Headline at the system")
    assert md.index("## Headline at the system") < md.index("## Pareto front")
    assert re.search(r"\| task-a \| onn-mzi \| optical \| [^|]+ \| photonic-mzi \|", md)
    assert "In one sentence: on task-a at the chip boundary the cheapest row is" in md
    # the wall times are only readable with the machine they ran on beside them
    header = next(line for line in md.splitlines() if line.startswith("| task | simulator | paradigm"))
    assert header.rstrip(" |").endswith("ran on")


def test_pareto_front_never_mixes_boundaries(rows):
    from nonvon.report import _front_table

    header, body = _front_table(rows)
    col = header.index("boundary")
    fronts = {}
    for line in body:
        fronts.setdefault((line[0], line[col]), []).append(line)
    assert {b for _, b in fronts} == {"chip", "system", "core"}  # cmos-* are core presets
    # a cheap chip row does not push the system rows off their own front
    assert any(line[header.index("simulator")] == "gpu-mlp" for (_, b), ls in fronts.items()
               if b == "system" for line in ls)


def test_break_even_spike_rate_against_the_int8_baseline():
    from nonvon.report import break_even_rows

    base = {"task": "t", "simulator": "gpu-mlp-int8", "paradigm": "gpu", "preset": "npu-7nm",
            "boundary": "chip", "kind": "modelled", "accuracy": 0.98, "energy_per_inference_j": 6e-6}
    snn = {"task": "t", "simulator": "snn-mlp", "paradigm": "spiking", "preset": "npu-7nm",
           "boundary": "chip", "kind": "modelled", "accuracy": 0.98, "energy_per_inference_j": 10e-6,
           "ledger": {"synop": 1000.0, "neuron_update": 50.0},
           "energy_breakdown_j": {"synop": 8e-6, "neuron_update": 2e-6},
           "metrics": {"spike_rate": 0.1, "spike_driven.synop": 1000.0}}
    (b,) = break_even_rows([base, snn])
    # E(r) = 2 uJ fixed + 8 uJ * r / 0.1 equals 6 uJ at r = 0.05
    assert b["break_even_rate"] == pytest.approx(0.05) and b["spike_driven_j"] == pytest.approx(8e-6)
    dear = dict(snn, energy_breakdown_j={"synop": 1e-6, "neuron_update": 9e-6})
    (b,) = break_even_rows([base, dear])
    assert b["break_even_rate"] is None  # the fixed 9 uJ alone exceed the baseline's 6 uJ


def test_each_floor_is_drawn_at_its_own_networks_accuracy(rows, monkeypatch):
    figures = []
    monkeypatch.setattr(report, "_png", lambda fig: figures.append(fig) or b"")
    report.accuracy_vs_energy_png(rows)
    ax = figures[0].axes[0]  # task-a
    ticks = {line.get_color(): line.get_ydata()[0] for line in ax.get_lines() if line.get_marker() == "|"}
    task_rows = [r for r in rows if r["task"] == "task-a" and r["kind"] == "modelled"]
    lim = physical_limits(task_rows)
    # one tick per floor, at the accuracy of the network it belongs to (not across the axis)
    for key, colour in (("landauer", "black"), ("shot_noise", "#d62728")):
        acc = next(100 * r["accuracy"] for r in task_rows if r["simulator"] == lim[key]["simulator"])
        assert ticks[colour] == pytest.approx(acc)
    assert ticks["black"] != ticks["#d62728"]  # hdc-projection at 95%, onn-mzi at 97%


def test_dominant_op_kinds_get_distinct_hues():
    import matplotlib
    from matplotlib.colors import to_hex

    from nonvon.report import _breakdown_colours, _breakdown_kinds

    # 14 minor kinds named to sort first, and the 4 that dominate some bar named to sort last
    minor = {f"a_minor_{i:02d}": 0.05 for i in range(14)}
    big = {"z_big_0": 0.3, "z_big_1": 0.3, "z_big_2": 0.2, "z_big_3": 0.2}
    bars = [{"energy_per_inference_j": 1.0, "energy_breakdown_j": {**{k: v / 2 for k, v in minor.items()},
                                                                    "static": 0.1}},
            {"energy_per_inference_j": 1.0, "energy_breakdown_j": big}]
    kinds = _breakdown_kinds(bars)
    colour = _breakdown_colours(bars, kinds)
    assert set(colour) == set(kinds) | {"other"}
    assert len({to_hex(c) for c in colour.values()}) == len(colour)  # no colour twice
    # the dominant kinds take tab20's distinct dark shades, not the light twin of another
    dark = {to_hex(c) for c in matplotlib.colormaps["tab20"].colors[0::2]}
    assert all(to_hex(colour[k]) in dark for k in big)


def _image_is_not_blank(path) -> None:
    import matplotlib.image

    img = matplotlib.image.imread(str(path))
    grey = img[..., :3].mean(axis=2)
    assert grey.std() > 0.05, f"{path.name} looks blank"
    assert (grey < 0.9).mean() > 0.01, f"{path.name} is nearly all white"


def test_figures_and_pages_are_written(report_dir):
    for name in FIGURES:
        data = (report_dir / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, name
        _image_is_not_blank(report_dir / name)
    md = (report_dir / "report.md").read_text()
    for heading in ("Pareto front per task", "Physical limits", "Measured on hardware",
                    "Device latency", "All results"):
        assert f"## {heading}" in md
    assert "nvml-fp32-b1024 (measured)" in md  # the measurement is on the front
    assert not list(report_dir.glob(".*.tmp"))


def test_html_is_self_contained(report_dir):
    page = (report_dir / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "<script" not in page and "url(" not in page
    sources = re.findall(r"""src\s*=\s*["']([^"']*)["']""", page)
    assert len(sources) == len(FIGURES)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<table>" in page and "gpu-mlp" in page and "onn-mzi" in page


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)


def test_html_renders_in_headless_chromium(report_dir, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("headless Chromium not installed (`make test` installs Debian's chromium "
                    "where apt-get exists and it runs as root)")
    shot = tmp_path / "screenshot.png"
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1280,2200", (report_dir / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 0, proc.stderr[-2000:]
    _image_is_not_blank(shot)


def test_figures_cope_with_many_simulators_and_no_timing(reg, tmp_path):
    # 24 simulators on one preset with no timing: breakdown bars stay one per row,
    # the latency figure says there is nothing to draw instead of failing
    base = _result("t", "s", "gpu", 0.9, {"mac_fp32": 100})
    preset = reg.preset("cmos-45nm")
    many = [{**base.priced(preset).modelled_row(), "simulator": f"sim-{i:02d}",
             "accuracy": 0.5 + i / 50} for i in range(24)]
    assert report.energy_breakdown_png(many).startswith(PNG)
    assert report.latency_png(many).startswith(PNG)


def test_report_sections_from_studies_are_included_and_untrusted_ones_skipped(rows, tmp_path,
                                                                           no_figures):
    (tmp_path / "a.section.json").write_text(json.dumps({
        "title": "A study", "blocks": [{"p": "hello <b>"}, {"img": "../../etc/passwd.png"},
                                       {"table": {"header": ["x"], "rows": [["1"]]}}]}))
    (tmp_path / "b.section.json").write_bytes(b"\x80\x04not json")
    write_report(rows, tmp_path)
    page = (tmp_path / "report.html").read_text()
    md = (tmp_path / "report.md").read_text()
    assert "<h2>A study</h2>" in page and "hello &lt;b&gt;" in page
    assert "passwd" not in md and "figure ../../etc/passwd.png is missing" in page
    assert "b.section.json is not a valid report section" in md


def test_report_cli_refuses_rows_it_cannot_draw(tmp_path, capsys):
    (tmp_path / "results.json").write_text(json.dumps({"schema": 1, "rows": [{"task": "t"}]}))
    assert run_cli("report", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "results row 0" in err and "fix:" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_measured_rows_at_or_below_zero_are_left_off_the_log_axis(rows):
    noisy = [dict(r) for r in rows if r["task"] == "task-a"]
    for r in noisy:
        if r["kind"] == "measured":
            r["energy_per_inference_j"] = -1e-6  # below the counter's resolution
    assert report.accuracy_vs_energy_png(noisy).startswith(PNG)


def test_break_even_counts_the_spilled_share_of_spike_driven_memory():
    from nonvon.report import break_even_rows

    base = {"task": "t", "simulator": "gpu-mlp-int8", "paradigm": "gpu", "preset": "npu-7nm",
            "boundary": "chip", "kind": "modelled", "accuracy": 0.98, "energy_per_inference_j": 1.0}
    # 100 on-chip accesses, half spilled: 50 priced as SRAM (0.5 J), 50 as DRAM (2.5 J)
    snn = {"task": "t", "simulator": "snn-mlp", "paradigm": "spiking", "preset": "npu-7nm",
           "boundary": "chip", "kind": "modelled", "accuracy": 0.98, "energy_per_inference_j": 4.0,
           "ledger": {"sram_byte": 100.0, "add_fp32": 10.0},
           "energy_breakdown_j": {"sram_byte": 0.5, "dram_byte": 2.5, "add_fp32": 1.0},
           "memory_placement": {"spilled_fraction": 0.5},
           "metrics": {"spike_rate": 0.2, "spike_driven.sram_byte": 40.0}}
    (b,) = break_even_rows([base, snn])
    assert b["spike_driven_j"] == pytest.approx(0.4 * 3.0)  # 40% of both SRAM and spilled DRAM


def test_report_sections_come_from_entry_points_and_a_failing_one_is_shown(rows, tmp_path, monkeypatch,
                                                                           no_figures):
    from nonvon.registry import registry

    def good(rows, out_dir):
        return report.ReportSection("Extra from a plugin", ({"p": f"{len(rows)} rows seen"},),
                                    order=5, images={"extra.png": b"\x89PNG\r\n\x1a\nxx"})

    def bad(rows, out_dir):
        raise ValueError("no curve here")

    monkeypatch.setitem(registry().report_sections, "extra", good)
    monkeypatch.setitem(registry().report_sections, "broken-section", bad)
    write_report(rows, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "## Extra from a plugin" in md and f"{len(rows)} rows seen" in md
    assert (tmp_path / "extra.png").read_bytes().startswith(b"\x89PNG")
    assert "broken-section (failed)" in md and "ValueError: no curve here" in md


def test_the_compact_headline_keeps_what_was_computed_and_drops_the_timings(rows):
    from nonvon.report import headline_markdown

    full, compact = headline_markdown(rows, "chip"), headline_markdown(rows, "chip", compact=True)
    head = compact.splitlines()[0]
    assert head.rstrip(" |").endswith("device latency / inference") and "ran on" not in compact
    # the same rows in the same order, each cut after its latency
    cut = ["|".join(line.split("|")[:9]) + "|" for line in full.splitlines()]
    assert [line.replace(" ", "") for line in compact.splitlines()] == \
        [line.replace(" ", "") for line in cut]
