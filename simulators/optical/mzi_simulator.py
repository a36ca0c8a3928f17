"""Hybrid optical-electronic network on MZI meshes (``onn-mzi``), with photonic non-idealities.

The model (:class:`nonvon.simulators.optical.mesh.HybridMZINetwork`) is trained in the phase domain with ideal
optics. Evaluation runs it as a chip would, layer by layer:

1. **front end** (electronic, only when the task has more features than ``n_inputs``): an
   int8 PCA projection fitted on the train split (``mac_int8``, ``sram_byte``);
2. **DAC + modulators**: each input is clipped to the DAC full scale (calibrated on training
   data) and rounded to ``dac_bits``; modulators write it onto the field amplitude of a
   laser mode (``dac_conversion_step``: ``2^dac_bits`` per sample, ``modulator_symbol``,
   ``sram_byte``);
3. **optics**: the field passes the mesh ``W = U Sigma V^dagger`` as programmed on a chip with
   the configured non-idealities: phase quantization, thermal crosstalk between neighbouring
   shifters, static phase errors, coupler imbalance, insertion loss per MZI and per chip
   (fibre coupling). The laser sends ``photons_per_mac x n_out`` photons per input mode at full
   scale, so ``photons_per_mac`` laser photons per multiply-accumulate (``laser_optical_zj``,
   ``optical_pass``); phase shifters hold their phases for the symbol (``phase_shifter_hold``,
   counted in pi-radian symbols from the programmed phases);
4. **balanced homodyne detection** against a local oscillator of ``lo_ratio x`` the mean
   full-scale signal per detector (drawn from the same laser), with Poisson shot noise
   (``photodetector_read``), then the ADC (``adc_conversion_step``: ``2^adc_bits`` per sample),
   the electronic rescale and bias
   (``mac_int32``; the int32 bias read, ``sram_byte``), the ReLU (``cmp_int32``) and the
   write-back (``sram_byte``); the class is the argmax (``cmp_int32``).

The host sends the input features as 8-bit codes and reads back the class index
(``host_transfer_byte``). A ledger's ``resident_bytes`` is what the digital periphery's SRAM
holds for the ``sram_byte`` accesses: the int8 front-end weights, the input buffer, the
biases and the largest layer's converter codes (the phases are held by the shifters' drivers).

Photon-budget curve: besides the run itself, :meth:`MziOnn.evaluate` re-runs the first
``photon_curve_samples`` samples at each laser budget in ``photon_curve`` (photons per MAC, shot
noise on, every other setting as configured) and stores accuracy, detected photons and optical
energy per inference as a :class:`~nonvon.simulators.optical.extras.PhotonCurve` in
``Result.extras`` (``result.extra(PhotonCurve)``); each run's detected photons and MAC count
are a :class:`~nonvon.simulators.optical.extras.MziRunStats` beside it.

NeuroBench figures in the metrics (:mod:`nonvon.workload`): each mesh is a fully connected
layer of analog MACs, so ``effective_macs`` counts a non-zero input code meeting a non-zero
entry of the programmed matrix (and the int8 front end's), ``dense_ops`` every entry,
``activation_sparsity`` the zero outputs of the electronic ReLUs, ``connection_sparsity``
the zero entries of the programmed matrices; ``footprint_bytes`` is every shifter's phase at
``phase_bits``, the int32 biases and the int8 front-end weights. No ACs (nothing spikes).

Boundary: the model is of one streaming inference at a time (every vector pays its converter
and holding costs; front-end weights are re-read per inference). Static power (laser source,
thermal control) is the preset's, charged over the modelled latency; control electronics
beyond the counted periphery are outside the model. The receiver's gain is set per output
for the loss of the paths that reach it (:func:`~.mesh.row_transmission`, a calibration a
real chip would make: edge modes of a Clements mesh cross half the MZIs); errors in the
phases are not calibrated away.

Sources: Clements et al., Optica 3, 1460 (2016); Shen et al., Nat. Photon. 11, 441 (2017)
(SVD mapping, hybrid network); Hamerly et al., Phys. Rev. X 9, 021032 (2019) (homodyne
readout and its shot-noise limit).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from typing import ClassVar

import numpy as np
import torch

from nonvon.energy_models import OpLedger
from nonvon.errors import ConfigError, IncompatibleError
from nonvon.models.training import train_classifier
from nonvon.result import find_extra
from nonvon.simulator import Capabilities, Prediction, Simulator, execution_option
from nonvon.simulators.optical.device import (
    ZJ,
    ChipOptions,
    PhotonCurveEvaluation,
    check_budgets,
    check_choice,
    check_nonneg,
    check_positive,
    conversion_steps,
    crosstalk,
    db_to_amplitude,
    homodyne_detect,
    photon_energy_j,
    quantize_phase,
    quantize_signed,
    torch_threads,
)
from nonvon.simulators.optical.extras import PER_MAC, MziRunStats, PhotonCurve
from nonvon.simulators.optical.mesh import (
    ARRANGEMENTS,
    HybridMZINetwork,
    MZIMesh,
    SVDLayer,
    mesh_unitary,
    mzi_transfer,
    row_transmission,
)
from nonvon.simulators.torch_backed import TorchBacked
from nonvon.tasks import Task
from nonvon.workload import Workload, connection_sparsity

__all__ = ["MziConfig", "MziOnn", "Chip"]

CALIBRATION_SAMPLES = 4096
CALIBRATION_PERCENTILE = 99.9
SMALL_MESH = 256


@dataclasses.dataclass(frozen=True)
class MziConfig(ChipOptions):
    """Network, training and device settings of ``onn-mzi``.

    Args:
        hidden: widths of the hidden optical layers.
        n_inputs: optical input size; a task with more features is reduced by ``input_reduction``.
        input_reduction: ``"pca"`` (an int8 electronic front end) or ``"none"`` (the task must
            then have at most ``n_inputs`` features).
        arrangement: ``"clements"`` or ``"reck"``.
        epochs, batch_size, lr, weight_decay: phase-domain training (Adam, cosine decay).
        augment_shift: image tasks: also train on copies shifted by this many pixels left,
            right, up and down (0: none; what 1 px gives: docs/results/optical-cpu/README.md).
        augment_flip: image tasks: also train on left-right mirrored copies (Fashion-MNIST).
        init: ``"phase"`` trains the phases directly (gradient descent through the meshes);
            ``"svd"`` trains an electronic MLP of the same sizes, then programs each weight
            onto the meshes by SVD and decomposition (exact up to rounding; how Shen et al. 2017
            programmed their chip), followed by ``finetune_epochs`` of phase-domain training.
        finetune_epochs: phase-domain epochs after ``init="svd"`` (at lr / 10).
        dropout: dropout of the electronic MLP trained by ``init="svd"``.
        device: where training runs: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
            Everything after training (calibration, chip, evaluation) runs on the CPU. An
            execution option: not part of ``compare``'s cache key.
        cuda_graph: on CUDA, replay each phase-domain training step as one CUDA graph (its
            meshes make a step thousands of small kernels); ``False``: step by step. The same
            training either way (an execution option).
        wavelength_nm: laser wavelength (sets the photon energy).
        photons_per_mac: laser photons per multiply-accumulate at full-scale inputs (> 0). The
            default, 1000, keeps the trained networks' accuracy that of a noiseless readout
            (studies/photon_budget.py; the numbers: docs/results/optical-cpu/README.md).
        lo_ratio: local-oscillator photons per detector relative to the mean full-scale signal.
        shot_noise: simulate Poisson shot noise at the photodiodes.
        dac_bits, adc_bits: converter resolution (``None``: ideal, no quantization).
        phase_bits: resolution of the phase shifters' drive over [0, 2 pi) (``None``: ideal).
        phase_noise_rad: standard deviation of a static random error on every phase (rad).
        splitter_imbalance_rad: standard deviation of each coupler's splitting-angle error
            (rad; 0.05 rad moves a 50:50 coupler to about 45:55).
        mzi_loss_db: insertion loss of each MZI (and each attenuator MZI), dB.
        coupling_loss_db: fixed loss per optical layer (fibre-to-chip in and out), dB.
        thermal_crosstalk: fraction of each neighbouring shifter's phase that a shifter also sees.
        chip_seed: seed of the static errors and of the shot noise.
        eval_batch_size: samples per simulated batch (speed only).
        photon_curve: laser budgets (photons per MAC) of the accuracy-vs-photons curve that
            :meth:`MziOnn.evaluate` adds to the result's extras (``()``: none).
        photon_curve_samples: test samples evaluated at each budget of the curve (the first ones).
        mesh_dtype: real dtype of the trained phases and mesh matrices: ``"float32"``
            (default; unitarity holds to about 1e-5 at N = 100) or ``"float64"``, the
            reference precision (to 1e-12; slower training). The programmed chip is always
            evaluated in float64.
    """

    hidden: tuple[int, ...] = (128, 128)
    n_inputs: int = 64
    input_reduction: str = "pca"
    arrangement: str = "clements"
    epochs: int = 15
    batch_size: int = 1024
    lr: float = 1e-2
    weight_decay: float = 0.0
    augment_shift: int = 1
    augment_flip: bool = False
    init: str = "phase"
    finetune_epochs: int = 0
    dropout: float = 0.0
    device: str = execution_option("auto")
    cuda_graph: bool = execution_option(True)
    wavelength_nm: float = 1550.0
    photons_per_mac: float = 1000.0
    lo_ratio: float = 1.0
    splitter_imbalance_rad: float = 0.0
    mzi_loss_db: float = 0.0
    coupling_loss_db: float = 0.0
    thermal_crosstalk: float = 0.0
    eval_batch_size: int = 2048
    photon_curve: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0, 100.0)
    mesh_dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "photon_curve",
                           check_budgets("photon_curve", self.photon_curve, "(1.0, 10.0)"))
        for h in self.hidden:
            check_positive("hidden entry", h, "128", integer=True)
        for name, ex in (("n_inputs", "64"), ("epochs", "15"), ("batch_size", "1024"),
                         ("eval_batch_size", "2048"), ("photon_curve_samples", "1000")):
            check_positive(name, getattr(self, name), ex, integer=True)
        check_choice("input_reduction", self.input_reduction, ("pca", "none"))
        check_choice("arrangement", self.arrangement, ARRANGEMENTS)
        check_choice("mesh_dtype", self.mesh_dtype, ("float32", "float64"))
        check_choice("init", self.init, ("phase", "svd"))
        check_choice("device", self.device, ("auto", "cpu", "cuda"))
        if not isinstance(self.cuda_graph, bool):
            raise ConfigError(f"cuda_graph={self.cuda_graph!r} must be True or False",
                              "cuda_graph=False trains step by step")
        if isinstance(self.finetune_epochs, bool) or not isinstance(self.finetune_epochs, int) \
                or self.finetune_epochs < 0:
            raise ConfigError(f"finetune_epochs={self.finetune_epochs!r} must be an integer >= 0",
                              "e.g. finetune_epochs=0")
        if not isinstance(self.dropout, (int, float)) or isinstance(self.dropout, bool) \
                or not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout!r} must be in [0, 1)", "e.g. dropout=0.2")
        check_positive("lr", self.lr, "1e-2")
        check_nonneg("weight_decay", self.weight_decay, "0.0")
        if isinstance(self.augment_shift, bool) or not isinstance(self.augment_shift, int) \
                or not 0 <= self.augment_shift <= 4:
            raise ConfigError(f"augment_shift={self.augment_shift!r} must be an integer in [0, 4] (pixels)",
                              "e.g. augment_shift=1, or 0 for no augmentation")
        if not isinstance(self.augment_flip, bool):
            raise ConfigError(f"augment_flip={self.augment_flip!r} must be True or False",
                              "e.g. augment_flip=False")
        check_positive("wavelength_nm", self.wavelength_nm, "1550.0")
        check_positive("photons_per_mac", self.photons_per_mac, "1000.0")
        check_positive("lo_ratio", self.lo_ratio, "1.0")
        self._check_chip_options(phase_noise_example="0.01")
        check_nonneg("splitter_imbalance_rad", self.splitter_imbalance_rad, "0.01")
        check_nonneg("mzi_loss_db", self.mzi_loss_db, "0.1",
                     " (a loss in dB; a passive component adds no light)")
        check_nonneg("coupling_loss_db", self.coupling_loss_db, "1.0", " (a loss in dB)")
        check_nonneg("thermal_crosstalk", self.thermal_crosstalk, "0.01")
        if self.thermal_crosstalk >= 0.5:
            raise ConfigError(f"thermal_crosstalk={self.thermal_crosstalk} is not a small fraction",
                              "a shifter sees a fraction < 0.5 of each neighbour's phase, e.g. 0.02")


def _line_neighbours(n: int) -> np.ndarray:
    i = np.arange(n)
    return np.stack([np.where(i > 0, i - 1, -1), np.where(i < n - 1, i + 1, -1)], axis=1)


@dataclasses.dataclass
class ChipLayer:
    """One optical layer as programmed on the (imperfect) chip."""

    w: torch.Tensor         # (out, in) complex128 transfer matrix, losses included
    hold_pi: float          # sum of held phases / pi over the layer's shifters
    n_shifters: int
    path_amplitude: torch.Tensor  # (out,) the loss per output the receiver's gain is set for


class Chip:
    """The trained network's phases programmed with the config's non-idealities (static draws)."""

    def __init__(self, net: HybridMZINetwork, cfg: MziConfig):
        self.cfg = cfg
        self.gen = torch.Generator().manual_seed(cfg.chip_seed)
        self.layers = [self._program_layer(layer) for layer in net.layers]

    def _errors(self, held: torch.Tensor, neighbours: np.ndarray) -> torch.Tensor:
        c = self.cfg
        p = crosstalk(held, neighbours, c.thermal_crosstalk)
        if c.phase_noise_rad:
            p = p + c.phase_noise_rad * torch.randn(p.shape, generator=self.gen, dtype=p.dtype)
        return p

    def _alphas(self, n: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        s = self.cfg.splitter_imbalance_rad
        if not s:
            return None, None
        return (s * torch.randn(n, generator=self.gen, dtype=torch.float64),
                s * torch.randn(n, generator=self.gen, dtype=torch.float64))

    def _program_mesh(self, mesh: MZIMesh) -> tuple[torch.Tensor, torch.Tensor, float, int]:
        """The mesh as programmed: its transfer matrix, the same without MZI loss (the
        receiver's calibration reference), held phase / pi and its shifter count."""
        c, lay = self.cfg, mesh.layout
        f = lambda t: t.detach().to(torch.float64)  # noqa: E731
        held = [quantize_phase(f(p), c.phase_bits) for p in (mesh.theta, mesh.phi, mesh.out_phase)]
        hold = float(sum(h.sum() for h in held)) / math.pi
        nb = lay.neighbours()
        th, ph = self._errors(held[0], nb), self._errors(held[1], nb)
        out = self._errors(held[2], _line_neighbours(lay.n_modes))
        a1, a2 = self._alphas(lay.n_mzi)
        u = mesh_unitary(lay, th, ph, out, alpha1=a1, alpha2=a2, mzi_loss_db=c.mzi_loss_db)
        lossless = mesh_unitary(lay, th, ph, out, alpha1=a1, alpha2=a2) if c.mzi_loss_db else u
        return u, lossless, hold, lay.n_phase_shifters

    def _program_layer(self, layer: SVDLayer) -> ChipLayer:
        c = self.cfg
        v, v0, hold_v, n_v = self._program_mesh(layer.v)
        u, u0, hold_u, n_u = self._program_mesh(layer.u)
        # attenuators: MZIs with theta_s and the external phase that cancels their phase factor
        ts = layer.theta_s.detach().to(torch.float64)
        programmed = (ts, -ts / 2 - math.pi / 2)
        held = [quantize_phase(p, c.phase_bits) for p in programmed]
        hold_s = float(sum(h.sum() for h in held)) / math.pi
        nb = _line_neighbours(layer.rank)
        a1, a2 = self._alphas(layer.rank)
        t00 = mzi_transfer(self._errors(held[0], nb), self._errors(held[1], nb), a1, a2)[0]
        sigma = t00 * db_to_amplitude(c.mzi_loss_db)
        w = layer.matrix(v=v, u=u, sigma=sigma) * db_to_amplitude(c.coupling_loss_db)
        path = row_transmission(w, layer.matrix(v=v0, u=u0, sigma=t00))
        return ChipLayer(w, hold_v + hold_u + hold_s, n_v + n_u + 2 * layer.rank, path)


class MziOnn(PhotonCurveEvaluation, TorchBacked, Simulator):
    """Hybrid MZI-mesh optical neural network with electronic ReLU (``onn-mzi``)."""

    cost_hint = 42.0  # 25 s alone with the CUDA-graph step
    paradigm = "optical"
    Config = MziConfig
    quick: ClassVar[dict] = {"hidden": (16,), "n_inputs": 16, "epochs": 4, "batch_size": 32,
                             "lr": 1e-2, "augment_shift": 0}

    def __init__(self, config: MziConfig | None = None, /, **overrides):
        super().__init__(config, **overrides)
        self.net: HybridMZINetwork | None = None
        self.front: tuple[np.ndarray, np.ndarray] | None = None  # (int8-valued weights x scale, mean)
        self.in_scale = 1.0
        self.dac_fs: list[float] = []
        self.adc_fs: list[float] = []

    @property
    def op_kinds(self) -> frozenset[str]:
        kinds = {"laser_optical_zj", "dac_conversion_step", "modulator_symbol", "photodetector_read",
                 "adc_conversion_step", "host_transfer_byte",
                 "phase_shifter_hold", "optical_pass", "mac_int32", "cmp_int32", "sram_byte"}
        if self.config.input_reduction == "pca":
            kinds.add("mac_int8")
        return frozenset(kinds)

    @property
    def precision(self) -> str:
        """The optical core computes on analog field amplitudes."""
        return "analog"

    @property
    def capabilities(self) -> Capabilities:
        if self.config.input_reduction == "pca":
            return Capabilities()
        return Capabilities(max_features=self.config.n_inputs)

    @property
    def n_params(self) -> int:
        if self.net is None:
            return 0
        n = sum(p.numel() for p in self.net.parameters())
        return n + (self.front[0].size if self.front is not None else 0)

    # -- training ---------------------------------------------------------------------------
    def _reduce(self, x: np.ndarray) -> np.ndarray:
        x = x.reshape(len(x), -1)
        if self.front is not None:
            w, mean = self.front
            x = (x - mean) @ w.T  # int8 weights (times their scale) on 8-bit pixels
        return (x / self.in_scale).astype(np.float32)

    def _threads(self) -> int:
        # one thread for meshes up to SMALL_MESH modes (many small kernels), all threads above
        return 1 if max(self.config.n_inputs, *self.config.hidden) <= SMALL_MESH else torch.get_num_threads()

    def _fit(self, task: Task, *, seed: int, progress: bool) -> None:
        with torch_threads(self._threads()):
            self._fit_impl(task, seed=seed, progress=progress)

    def _augmented(self, task: Task):
        """The train images and their augmented copies, one array at a time (with labels)."""
        c = self.config
        x, y = task.x_train, task.y_train
        yield x, y
        if not task.is_image:
            return
        if c.augment_flip:
            yield x[:, :, ::-1], y
        s = c.augment_shift
        if s:  # shifts with zero fill (np.roll would wrap digits around the border)
            pad = np.pad(x, ((0, 0), (s, s), (s, s)))
            h, w = x.shape[1:]
            for dy, dx in ((0, s), (0, -s), (s, 0), (-s, 0)):
                yield pad[:, s + dy:s + dy + h, s + dx:s + dx + w], y

    def _fit_impl(self, task: Task, *, seed: int, progress: bool) -> None:
        c = self.config
        x = task.x_train.reshape(len(task.x_train), -1).astype(np.float32)
        self.front = None
        if x.shape[1] > c.n_inputs:
            if c.input_reduction != "pca":  # capabilities already refuse this; be explicit anyway
                raise ConfigError(f"task has {x.shape[1]} features > n_inputs={c.n_inputs}",
                                  "set input_reduction='pca' or reduce the task first")
            from sklearn.decomposition import PCA

            p = PCA(n_components=c.n_inputs, random_state=seed).fit(x)
            scale = np.abs(p.components_).max() / 127.0
            w = (np.round(p.components_ / scale) * scale).astype(np.float32)
            self.front = (w, p.mean_.astype(np.float32))
        self.in_scale = 1.0
        xr = self._reduce(x)
        self.in_scale = float(xr.std()) or 1.0
        xr = xr / self.in_scale
        parts = list(self._augmented(task))
        xa = np.concatenate([xr] + [self._reduce(np.ascontiguousarray(p)) for p, _ in parts[1:]])
        ya = np.concatenate([p for _, p in parts])
        torch.manual_seed(seed)
        sizes = (xr.shape[1], *c.hidden, task.n_classes)
        self.net = HybridMZINetwork(sizes, c.arrangement, dtype=getattr(torch, c.mesh_dtype))
        if c.init == "svd":
            self._program_from_mlp(sizes, xa, ya, seed=seed, progress=progress)
        epochs, lr = (c.epochs, c.lr) if c.init == "phase" else (c.finetune_epochs, c.lr / 10)
        if epochs:
            train_classifier(self.net, xa, ya, epochs=epochs, batch_size=c.batch_size, lr=lr,
                             weight_decay=c.weight_decay, seed=seed, device=self.device,
                             progress=progress, label=f"{self.name} train",
                             cuda_graph=c.cuda_graph)
            self.net.cpu()  # calibration, chip and evaluation run on the CPU
        self._calibrate(xr[:CALIBRATION_SAMPLES])

    def _program_from_mlp(self, sizes, xa, ya, *, seed: int, progress: bool) -> None:
        """Train an electronic MLP of the same sizes and program its weights onto the meshes."""
        from nonvon.models import mlp

        c = self.config
        net = mlp(sizes[0], sizes[1:-1], sizes[-1], c.dropout)
        train_classifier(net, xa, ya, epochs=c.epochs, batch_size=c.batch_size, lr=c.lr,
                         weight_decay=c.weight_decay, seed=seed, device=self.device, progress=progress,
                         label=f"{self.name} electronic pre-training")
        net.cpu()  # SVD and decomposition of the weights run on the CPU
        linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        self.net.program([m.weight.detach() for m in linears], [m.bias.detach() for m in linears])

    @torch.no_grad()
    def _calibrate(self, xr: np.ndarray) -> None:
        """DAC and ADC full scales from the ideal network on training data (a percentile)."""
        net = self.net.double()
        h = torch.from_numpy(xr).double()
        g = net.gains()
        self.dac_fs, self.adc_fs = [], []
        for i, layer in enumerate(net.layers):
            fs = float(np.percentile(h.abs().numpy(), CALIBRATION_PERCENTILE)) or 1.0
            a = (h / fs).clamp(-1, 1)
            r = (a.to(torch.complex128) @ layer.matrix().T).real
            self.dac_fs.append(fs)
            self.adc_fs.append(float(np.percentile(r.abs().numpy(), CALIBRATION_PERCENTILE)) or 1.0)
            h = g[i] * fs * r + net.bias[i]
            if i < len(net.layers) - 1:
                h = torch.relu(h)
        net.to(getattr(torch, self.config.mesh_dtype))

    def with_config(self, **changes) -> MziOnn:
        """The same trained network on a chip with other device settings (no retraining).

        Only device and evaluation options may change (non-idealities, photon budget,
        converters, ``chip_seed``); options that define the trained network may not.
        """
        fixed = {"hidden", "n_inputs", "input_reduction", "arrangement", "epochs", "batch_size", "lr",
                 "weight_decay", "augment_shift", "augment_flip", "init", "finetune_epochs", "dropout"}
        bad = sorted(set(changes) & fixed)
        if bad:
            raise ConfigError(f"{bad} define the trained network and cannot change after fit",
                              "fit a new simulator with those options")
        if self.net is None:
            raise ConfigError("with_config needs a fitted simulator", "call fit(task) first")
        other = type(self)(self.config, **changes)
        for k in ("net", "front", "in_scale", "dac_fs", "adc_fs", "_fitted_on", "_seed", "fit_wall_s"):
            setattr(other, k, getattr(self, k))
        return other

    # -- persistence: safetensors, no pickle ---------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The trained network, the int8 front end and the converter calibration, as tensors
        (the calibration in float64, so a restored chip rounds exactly as the fitted one)."""
        if self.net is None:
            raise ConfigError("nothing to save: the simulator has not been fitted", "call fit(task) first")
        tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        tensors["net.sizes"] = torch.tensor(self.net.sizes, dtype=torch.int64)
        if self.front is not None:
            tensors["front.w"] = torch.from_numpy(np.ascontiguousarray(self.front[0]))
            tensors["front.mean"] = torch.from_numpy(np.ascontiguousarray(self.front[1]))
        tensors["calib.in_scale"] = torch.tensor(self.in_scale, dtype=torch.float64)
        tensors["calib.dac_fs"] = torch.tensor(self.dac_fs, dtype=torch.float64)
        tensors["calib.adc_fs"] = torch.tensor(self.adc_fs, dtype=torch.float64)
        return tensors

    def _load_state_tensors(self, tensors: dict[str, torch.Tensor], task: Task | None) -> None:
        t = {k: torch.as_tensor(v) for k, v in tensors.items()}
        missing = sorted({"net.sizes", "calib.in_scale", "calib.dac_fs", "calib.adc_fs"} - set(t))
        if missing:
            raise ConfigError(f"{self.name} state is missing tensors {missing}",
                              "pass what state_tensors() returned for this simulator")
        sizes = tuple(int(v) for v in t["net.sizes"])
        if task is not None and sizes[-1] != task.n_classes:
            raise IncompatibleError(f"{self.name} state has {sizes[-1]} outputs; task {task.name!r} has "
                                    f"{task.n_classes} classes", "load it with the task it was fitted on")
        self.net = HybridMZINetwork(sizes, self.config.arrangement,
                                    dtype=getattr(torch, self.config.mesh_dtype))
        net_state = {k[4:]: v for k, v in t.items() if k.startswith("net.") and k != "net.sizes"}
        self.net.load_state_dict(net_state)
        self.front = (t["front.w"].numpy(), t["front.mean"].numpy()) if "front.w" in t else None
        self.in_scale = float(t["calib.in_scale"])
        self.dac_fs = [float(v) for v in t["calib.dac_fs"]]
        self.adc_fs = [float(v) for v in t["calib.adc_fs"]]

    def save(self, path) -> None:
        """Write :meth:`state_tensors` and the config, task shape and seed to a ``.safetensors`` file."""
        import json

        from safetensors.torch import save_file

        meta = {"config": json.dumps(dataclasses.asdict(self.config)),
                "fitted_on": json.dumps(self._fitted_on), "seed": str(self._seed),
                "fit_wall_s": repr(self.fit_wall_s)}
        save_file(self.state_tensors(), str(path), metadata=meta)

    @classmethod
    def load(cls, path, **changes) -> MziOnn:
        """Rebuild a fitted simulator saved by :meth:`save` (device options may be changed)."""
        import json

        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        cfg = json.loads(meta["config"])
        cfg["hidden"] = tuple(cfg["hidden"])
        cfg["photon_curve"] = tuple(cfg["photon_curve"])
        sim = cls(MziConfig(**cfg))
        if "calib.in_scale" not in tensors:  # written before the calibration moved into the tensors
            tensors["net.sizes"] = torch.tensor(json.loads(meta["sizes"]), dtype=torch.int64)
            tensors["calib.in_scale"] = torch.tensor(float(meta["in_scale"]), dtype=torch.float64)
            for k in ("dac_fs", "adc_fs"):
                tensors[f"calib.{k}"] = torch.tensor(json.loads(meta[k]), dtype=torch.float64)
        sim._load_state_tensors(tensors, None)
        shape, classes = json.loads(meta["fitted_on"])
        sim._fitted_on, sim._seed = (tuple(shape), classes), int(meta["seed"])
        sim.fit_wall_s = float(meta.get("fit_wall_s", 0.0))
        return sim.with_config(**changes) if changes else sim

    # -- inference ---------------------------------------------------------------------------

    def photon_curve(self, x: np.ndarray, y: np.ndarray) -> PhotonCurve:
        """Accuracy vs laser photons per MAC on ``(x, y)``.

        Per budget (laser signal photons per MAC): detected photons per MAC with the local
        oscillator (both reach the photodiodes) and without, laser light per inference (before
        wall-plug losses) and accuracy.
        """
        acc, energy, detected, signal = [], [], [], []
        for budget in self.config.photon_curve:
            sim = self.with_config(photons_per_mac=budget, shot_noise=True, photon_curve=())
            pred = sim._predict(x)
            st = find_extra(pred.extras, MziRunStats)
            lo = sim.config.lo_ratio * budget  # local-oscillator photons per MAC at the diodes
            signal.append(st.detected_signal_photons_per_mac)
            detected.append(st.detected_signal_photons_per_mac + lo)
            energy.append(pred.ledger.per_inference()["laser_optical_zj"] * ZJ)
            acc.append(float(np.mean(pred.labels == y)))
        return PhotonCurve(PER_MAC, n_samples=len(y), budgets=self.config.photon_curve,
                           accuracies=acc, optical_energies_j=energy, detected_photons=detected,
                           detected_signal_photons=signal)

    @staticmethod
    def _bytes(bits: int | None) -> int:
        return 4 if bits is None else -(-bits // 8)

    def resident_bytes(self, n_features: int) -> int:
        """What the ``sram_byte`` accesses hold: int8 front-end weights and the 8-bit input
        buffer, the int32 biases, and the largest layer's DAC and ADC codes."""
        c = self.config
        front = self.front[0].size + n_features if self.front is not None else 0
        sizes = self.net.sizes
        biases = 4 * sum(sizes[1:])
        codes = max(a * self._bytes(c.dac_bits) + b * self._bytes(c.adc_bits)
                    for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        return front + biases + codes

    def _predict(self, x: np.ndarray) -> Prediction:
        with torch_threads(self._threads()):
            return self._predict_impl(x)

    @torch.no_grad()
    def _predict_impl(self, x: np.ndarray) -> Prediction:
        c = self.config
        net = self.net.double()
        chip = Chip(net, c)
        noise_gen = torch.Generator().manual_seed(c.chip_seed + 1)
        e_photon = photon_energy_j(c.wavelength_nm * 1e-9)
        counts: Counter[str] = Counter()
        floats = {"laser_optical_zj": 0.0, "phase_shifter_hold": 0.0}
        detected = macs = 0.0
        work = Workload()  # the NeuroBench figures (module docstring)
        g = net.gains().double()
        n_feat = int(np.prod(x.shape[1:]))
        class_bytes = max(1, -(-math.ceil(math.log2(net.sizes[-1])) // 8))
        labels = []
        for start in range(0, len(x), c.eval_batch_size):
            xb = x[start:start + c.eval_batch_size]
            b = len(xb)
            counts["host_transfer_byte"] += b * (n_feat + class_bytes)  # 8-bit features in, class out
            work.samples += b
            if self.front is not None:
                k = self.front[0].shape[0]
                counts["mac_int8"] += b * n_feat * k
                front_in = torch.from_numpy(np.asarray(xb).reshape(b, -1) != 0).double()
                front_w = torch.from_numpy(np.asarray(self.front[0]) != 0).double()
                work.effective_macs += int((front_in @ front_w.T).sum())
                work.dense_ops += b * n_feat * k
                counts["sram_byte"] += b * (n_feat + n_feat * k)  # pixels and int8 weights
            h = torch.from_numpy(self._reduce(xb)).double()
            for i, (layer, cl) in enumerate(zip(net.layers, chip.layers, strict=True)):
                n_in, n_out = layer.in_features, layer.out_features
                a = quantize_signed(h / self.dac_fs[i], c.dac_bits, 1.0)
                n0 = c.photons_per_mac * n_out          # photons per input mode at full scale
                lo = c.lo_ratio * c.photons_per_mac * n_in  # mean full-scale signal per detector
                beta = math.sqrt(n0) * (a.to(torch.complex128) @ cl.w.T)
                est, det = homodyne_detect(beta, lo, generator=noise_gen, shot_noise=c.shot_noise)
                r = quantize_signed(est / (math.sqrt(n0) * cl.path_amplitude), c.adc_bits, self.adc_fs[i])
                h = g[i] * self.dac_fs[i] * r + net.bias[i].double()
                hidden = i < len(net.layers) - 1
                if hidden:
                    h = torch.relu(h)
                    work.activations += h.numel()
                    work.zero_activations += h.numel() - int(torch.count_nonzero(h))
                work.effective_macs += int(((a != 0).double() @ (cl.w != 0).double().T).sum())
                work.dense_ops += b * n_in * n_out
                detected += float((beta.abs() ** 2).sum())
                macs += b * n_in * n_out
                counts["optical_pass"] += b
                counts["dac_conversion_step"] += b * n_in * conversion_steps(c.dac_bits)
                counts["modulator_symbol"] += b * n_in
                counts["photodetector_read"] += b * n_out
                counts["adc_conversion_step"] += b * n_out * conversion_steps(c.adc_bits)
                counts["mac_int32"] += b * n_out
                counts["cmp_int32"] += b * n_out if hidden else 0
                counts["sram_byte"] += b * (n_in * self._bytes(c.dac_bits) + n_out * self._bytes(c.adc_bits)
                                            + 4 * n_out)  # codes, and the int32 bias of each output
                floats["laser_optical_zj"] += b * (n_in * n0 + n_out * lo) * e_photon / ZJ
                floats["phase_shifter_hold"] += b * cl.hold_pi
            counts["cmp_int32"] += b * (h.shape[1] - 1)  # argmax
            labels.append(h.argmax(1))
        net.to(getattr(torch, self.config.mesh_dtype))
        for k, v in floats.items():
            counts[k] = int(round(v))
        laser_photons = floats["laser_optical_zj"] * ZJ / e_photon
        stats = MziRunStats(detected_signal_photons_per_mac=detected / max(macs, 1.0),
                            laser_photons_per_mac_incl_lo=laser_photons / max(macs, 1.0),
                            macs_per_inference=macs / max(len(x), 1))
        ledger = OpLedger({k: v for k, v in counts.items() if v}, n_inferences=len(x),
                          resident_bytes=self.resident_bytes(n_feat))
        # optical_macs_per_inference: the MAC count the report's shot-noise floor needs
        metrics = {"optical_macs_per_inference": stats.macs_per_inference, **work.metrics(),
                   "footprint_bytes": float(self.footprint_bytes(chip)),
                   "connection_sparsity": connection_sparsity(cl.w for cl in chip.layers)}
        return Prediction(torch.cat(labels).numpy(), ledger, extras=(stats,), metrics=metrics)

    def footprint_bytes(self, chip: Chip) -> int:
        """The stored network: every phase shifter's setting at ``phase_bits`` (ideal: the
        mesh dtype), the int32 biases and the int8 front-end weights."""
        c = self.config
        per_phase = c.phase_bits / 8 if c.phase_bits else (4 if c.mesh_dtype == "float32" else 8)
        shifters = sum(cl.n_shifters for cl in chip.layers)
        front = self.front[0].size if self.front is not None else 0
        return math.ceil(shifters * per_phase) + 4 * sum(self.net.sizes[1:]) + front
