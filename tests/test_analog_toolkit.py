"""nonvon's crossbar against IBM's aihwkit-lightning on the same layer: the tile mapping counts
agree exactly, and with device noise off the analog MVM (input range, DAC, per-column ADC
bound and quantization, per-tile partial sums) agrees with ``AnalogLinear`` in evaluation mode
to within one ADC step per output, and a trained network's accuracy to within 0.5 points."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("aihwkit_lightning")

from nonvon.conformance import digits_task  # noqa: E402
from nonvon.models import mlp  # noqa: E402
from nonvon.registry import registry  # noqa: E402
from nonvon.simulators.analog import PCM, TileMap, analog_linear, program_layer, training  # noqa: E402
from nonvon.simulators.analog.crossbar import read_layer  # noqa: E402
from nonvon.simulators.analog.simulator import AnalogConfig  # noqa: E402

ACCURACY_TOLERANCE = 0.005  # the two differ only by float rounding at ADC step edges


def analog_layer(n_in: int, n_out: int, config: AnalogConfig, seed: int = 0):
    from aihwkit_lightning.nn import AnalogLinear

    torch.manual_seed(seed)
    layer = AnalogLinear(n_in, n_out, rpu_config=training.rpu_config(config, training_noise=False))
    with torch.no_grad():
        layer.input_range.copy_(torch.linspace(0.8, 1.2, len(layer.in_sizes)))
    return layer.eval()


@pytest.mark.parametrize("n_in,n_out,rows,cols", [(784, 512, 256, 256), (300, 10, 128, 64),
                                                  (64, 48, 32, 32)])
def test_tile_counts_match_the_toolkits_split_exactly(n_in, n_out, rows, cols):
    c = AnalogConfig(tile_rows=rows, tile_cols=cols)
    layer = analog_layer(n_in, n_out, c)
    m = TileMap(n_in, n_out, rows, cols)
    assert m.row_slices == list(layer.in_sizes)
    assert m.counts()["adc"] == n_out * len(layer.in_sizes)
    assert m.n_tiles == len(layer.in_sizes) * -(-n_out // cols)


@pytest.mark.parametrize("dac,adc", [(8, 8), (4, 6)])
def test_noise_free_mvm_matches_analog_linear_within_one_adc_step(dac, adc):
    c = AnalogConfig(tile_rows=96, dac_bits=dac, adc_bits=adc, adc_range=4.0)
    layer = analog_layer(300, 40, c)
    x = torch.randn(256, 300, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = layer(x)
    prog = program_layer(layer.weight, layer.bias, layer.input_range, PCM, tile_rows=96,
                         tile_cols=256, levels=0, gen=torch.Generator().manual_seed(0), prog_scale=0.0)
    w = [v.float() for v in read_layer(prog, PCM, None, torch.Generator())]
    prog.input_range, prog.bias = prog.input_range.float(), prog.bias.float()
    prog.w_max = [m.float() for m in prog.w_max]
    got = analog_linear(x, w, prog, dac_bits=dac, adc_bits=adc, adc_range=4.0)
    # one ADC step of the widest column, summed over the row slices
    step = max(float((2 * r * 4.0 * m).max()) / (2**adc - 2) for r, m in zip(prog.input_range, prog.w_max,
                                                                              strict=True))
    diff = (got - want).abs()
    assert float(diff.max()) <= len(prog.w_max) * step * 1.001
    assert float((diff < 1e-4 * step).float().mean()) > 0.99  # almost all outputs are identical


@pytest.mark.parametrize("name", ["analog-pcm", "analog-pcm-cnn"])
def test_a_trained_networks_accuracy_matches_the_toolkit_with_noise_off(name):
    from nonvon.models import cnn

    task = digits_task()
    off = {"prog_noise_scale": 0.0, "read_noise_scale": 0.0, "drift_scale": 0.0, "out_noise": 0.0}
    shape = {"hidden": (48,)} if name == "analog-pcm" else {"channels": (8, 16), "dense": 32, "kernel": 3}
    sim = registry().simulator(name, tile_rows=32, tile_cols=32, **shape, **off)
    c = sim.config
    torch.manual_seed(0)
    digital = mlp(64, c.hidden, 10) if c.model == "mlp" else cnn(8, c.channels, c.dense, 10, kernel=3)
    net = training.to_analog(digital, training.rpu_config(c))
    x = task.x_train.reshape(len(task.x_train), -1) if c.model == "mlp" else task.x_train
    training.train_hwa(net, x, task.y_train, epochs=3, batch_size=32, lr=1e-2, seed=0,
                       device=torch.device("cpu"), progress=False, label="test")
    xt = torch.from_numpy(task.x_test if c.model == "cnn" else task.x_test.reshape(len(task.x_test), -1))
    with torch.no_grad():
        theirs = float(np.mean(net(xt).argmax(1).numpy() == task.y_test))
    state = {"program_seed": torch.tensor([0])}
    for i, m in enumerate(training.analog_layers(net)):
        state |= {f"layer{i}.weight": m.weight.detach().reshape(m.weight.shape[0], -1),
                  f"layer{i}.bias": m.bias.detach(), f"layer{i}.input_range": m.input_range.detach()}
    ours = sim.load_state_tensors(state, task).evaluate(task).accuracy
    assert theirs > 0.3  # it learned something (a tiny CNN learns slowly from 600 digits)
    assert abs(ours - theirs) <= ACCURACY_TOLERANCE


def _drift_study():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "studies/analog_drift.py"
    spec = importlib.util.spec_from_file_location("analog_drift_study", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_drift_study_writes_its_curve_and_reuses_its_training(tmp_path):
    import json

    mod = _drift_study()
    assert mod.main(["--quick", "--sims", "analog-pcm", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    times = [r["t_s"] for r in doc["rows"]]
    assert times == [None, *mod.TIMES_S] and all(0 < r["accuracy"] <= 1 for r in doc["rows"])
    assert (tmp_path / "drift.png").read_bytes()[:4] == b"\x89PNG"
    assert mod.main(["--quick", "--sims", "analog-pcm", "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert all(r["loaded"] for r in again)
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in doc["rows"]]


def test_the_drift_study_refuses_a_simulator_of_another_paradigm(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        _drift_study().main(["--sims", "gpu-mlp", "--out", str(tmp_path)])
    assert err.value.code == 2 and "gpu-mlp" in capsys.readouterr().err
