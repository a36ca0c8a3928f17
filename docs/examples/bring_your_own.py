"""Bring your own network: price networks trained elsewhere, one per ecosystem, on `digits`.

Each section trains (briefly) what a user would bring, then hands it to
``nonvon.load_network``, which returns a simulator whose ``evaluate(task)`` is priced:

1. an snnTorch network, exported with snnTorch's own NIR export, on ``loihi``;
2. a torchvision-style CNN (BatchNorm, a residual block) on ``cmos-7nm`` and ``gpu-h100``;
3. a qiskit circuit on ``qpu-superconducting`` (its rotation angles are random here, so its
   accuracy is near chance: bring a trained one);
4. a torchhd projection encoder and centroid on ``hdc-asic-28nm``.

Run: ``python docs/examples/bring_your_own.py`` (under a minute on a CPU). The last line is
one JSON object: accuracy and joules per inference of each.
"""

from __future__ import annotations

import json

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import nonvon

task = nonvon.registry().task("digits")  # 8x8 images, 10 classes, always offline
x_train, y_train = torch.from_numpy(task.x_train), torch.from_numpy(task.y_train)
summary: dict[str, dict[str, float]] = {}


def record(label: str, result: nonvon.Result) -> None:
    summary[label] = {"accuracy": round(result.accuracy, 4),
                      "energy_per_inference_j": result.energy.energy_j}
    print(f"{label:32s} accuracy {result.accuracy:.3f}   {result.energy.energy_j:.3e} J/inference")


# -- 1. snnTorch -> NIR -> loihi ----------------------------------------------------------
def snntorch_section() -> None:
    import snntorch as snn
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    T = 8

    def leaky(n: int, **kw) -> snn.Leaky:
        # per-neuron beta and threshold, so that NIR's type inference sees each population's size
        return snn.Leaky(beta=torch.full((n,), 0.9), threshold=torch.ones(n), init_hidden=True,
                         reset_mechanism="zero", **kw)

    net = nn.Sequential(nn.Linear(64, 64), leaky(64), nn.Linear(64, 10), leaky(10, output=True))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        for i in range(0, len(x_train), 64):
            xb, yb = x_train[i:i + 64].flatten(1), y_train[i:i + 64]
            utils.reset(net)
            spikes = torch.bernoulli(xb.expand(T, *xb.shape), generator=gen)  # rate coding
            counts = sum(net(spikes[t])[0] for t in range(T))
            loss = F.cross_entropy(counts, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    graph = export_to_nir(net, torch.zeros(64))  # snnTorch's own export
    sim = nonvon.load_network(graph, device="loihi", timesteps=T, coding="rate")
    record("snntorch (NIR) on loihi", sim.evaluate(task))


# -- 2. a torchvision-style CNN on cmos-7nm and gpu-h100 ------------------------------------
class BasicBlock(nn.Module):
    """ResNet's basic block (He et al. 2016): conv-BN-ReLU-conv-BN plus the identity."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + x)  # the residual add is counted too


def cnn_section() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                        BasicBlock(16), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Dropout(0.1), nn.Linear(16, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    net.train()
    for _ in range(8):
        for i in range(0, len(x_train), 64):
            loss = F.cross_entropy(net(x_train[i:i + 64].unsqueeze(1)), y_train[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    for device in ("cmos-7nm", "gpu-h100"):
        record(f"torch CNN on {device}", nonvon.load_network(net, device=device).evaluate(task))


# -- 3. a qiskit circuit on qpu-superconducting --------------------------------------------
def qiskit_section() -> None:
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector

    n = 10
    x = ParameterVector("x", n)  # the free parameters are the inputs (PCA features as angles)
    qc = QuantumCircuit(n, name="angle-cz-ring")
    rng = np.random.default_rng(0)
    for q in range(n):
        qc.ry(x[q], q)
    for q in range(n):
        qc.cz(q, (q + 1) % n)
    for q in range(n):
        qc.ry(float(rng.normal()), q)
    qc.measure_all()  # the declared readout: qubit k scores class k
    sim = nonvon.load_network(qc, device="qpu-superconducting", shots=100)
    record("qiskit circuit on qpu-superconducting", sim.evaluate(task))


# -- 4. torchhd on hdc-asic-28nm --------------------------------------------------------------
def torchhd_section() -> None:
    import torchhd

    torch.manual_seed(0)
    encoder = torchhd.embeddings.Projection(64, 4096)
    encoder.weight.data = encoder.weight.data.sign()  # bipolar: integer adds on an HDC chip
    centroid = torchhd.models.Centroid(4096, 10)
    codes = torch.round(x_train.flatten(1) * 255)     # the 8-bit codes an HDC chip receives
    with torch.no_grad():
        centroid.add(torchhd.normalize(encoder(codes)), y_train)
    sim = nonvon.load_network((encoder, centroid), device="hdc-asic-28nm")
    record("torchhd on hdc-asic-28nm", sim.evaluate(task))


if __name__ == "__main__":
    snntorch_section()
    cnn_section()
    qiskit_section()
    torchhd_section()
    print(json.dumps(summary))
