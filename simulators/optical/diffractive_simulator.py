"""Diffractive optical network (``onn-diffractive``): passive phase layers, detectors per class.

The model is :class:`nonvon.simulators.optical.diffraction.DiffractiveNetwork` (angular-spectrum propagation,
phase-only layers). Training uses ideal optics; evaluation runs the trained layers as fabricated:

1. the input image is read from memory (``sram_byte``) and written, pixel by pixel, onto the
   field amplitude of the illumination by a spatial light modulator driven by DACs
   (``dac_conversion_step``, ``2^dac_bits`` per pixel; ``modulator_symbol``);
2. the laser delivers ``photons_per_inference`` photons to the input plane
   (``laser_optical_zj``); the light crosses the stack once (``optical_pass``); each layer's
   phases are fabricated with ``phase_bits`` levels over [0, 2 pi) and a static random error
   ``phase_noise_rad``, and absorbs ``layer_loss_db``;
3. the detectors count photons with Poisson shot noise (``photodetector_read``), an ADC
   digitises each count (``adc_conversion_step``, ``2^adc_bits`` per detector) and the class is
   the argmax (``cmp_int32``). By default (``detection="differential"``, Li et al., Advanced
   Photonics 1, 046001, 2019) each class has a positive and a negative detector and its score is
   the difference of their counts: twice the detectors, and one subtraction per class, counted
   as ``cmp_int32`` (a 32-bit subtraction and a compare are the same ALU operation, and every
   preset prices a compare as an add). ``detection="single"`` is Lin et al.'s one detector per
   class.

The host sends the image as 8-bit pixels and reads back the class index
(``host_transfer_byte``); a ledger's ``resident_bytes`` is the image buffer the ``sram_byte``
reads hold. The layers are passive (fabricated, as the 3D-printed layers of Lin et al. 2018), so
they hold their phases at no power and no ``phase_shifter_hold`` is counted; the source and the
detectors' static power are the preset's. Control electronics are outside the model.

NeuroBench figures (:mod:`nonvon.workload`): ``footprint_bytes`` in the metrics is the
fabricated layers' pixels at ``phase_bits``. The rest have no counterpart and are left out,
not set to zero: free-space propagation couples every pixel to its neighbours through a
continuous field, with no discrete synapses to count as MACs, dense ops or zero weights,
and the stack is linear up to the detectors, with no activation layer.

The default geometry is Lin et al.'s MNIST stack (``LIN2018``: 0.4 THz, 200 x 200 pixels of
400 um, 30 mm spacing, 5 layers; Science 361, 1004 (2018)) scaled to an 850 nm source: every
length times 850 nm / 0.75 mm. Scalar diffraction depends only on lengths over the wavelength,
so it is the same network (tests/test_diffractive_preset.py checks it), and at 850 nm there
are no thermal photons (about 15 per mode at 0.4 THz and 300 K), so the shot-noise model and
the ``photonic-limit`` bound hold; the ``diffractive-nir`` preset prices its SLM, camera and
laser (docs/results/calibration/diffractive-preset.md). Training it takes a GPU
(``device="cuda"``) or an hour of CPU.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np
import torch

from nonvon.energy_models import OpLedger
from nonvon.errors import ConfigError, IncompatibleError
from nonvon.models.training import train_classifier
from nonvon.simulator import Capabilities, Prediction, Simulator
from nonvon.simulators.optical.device import (
    ZJ,
    ChipOptions,
    PhotonCurveEvaluation,
    check_budgets,
    check_choice,
    check_nonneg,
    check_positive,
    conversion_steps,
    db_to_amplitude,
    intensity_detect,
    photon_energy_j,
    quantize_phase,
    quantize_signed,
    torch_threads,
)
from nonvon.simulators.optical.diffraction import (
    DETECTIONS,
    SPEED_OF_LIGHT_M_S,
    DiffractiveGeometry,
    DiffractiveNetwork,
    class_scores,
)
from nonvon.simulators.optical.extras import PER_INFERENCE, DiffractiveRunStats, PhotonCurve
from nonvon.simulators.torch_backed import torch_device
from nonvon.tasks import Task

__all__ = ["DiffractiveConfig", "DiffractiveOnn", "NIR_SCALE"]

#: Lin et al.'s 0.4 THz lengths scaled to an 850 nm source (see the module docstring).
NIR_SCALE = 850e-9 / (SPEED_OF_LIGHT_M_S / 0.4e12)


@dataclasses.dataclass(frozen=True)
class DiffractiveConfig(ChipOptions):
    """Geometry, training and device settings of ``onn-diffractive`` (defaults: Lin et al. 2018 at 850 nm).

    Args:
        frequency_hz: illumination frequency (default 352.7 THz: wavelength 850 nm).
        n_pixels: pixels per side of every layer.
        pitch_um: pixel pitch (um); ``n_pixels * pitch_um`` is the layer's side.
        spacing_mm: distance between consecutive planes (input, layers, detectors).
        n_layers: diffractive layers.
        input_fraction, detector_fraction: input image and detector sides relative to the layer.
        pad: zero-padding factor of the propagation grid.
        modulation: ``"phase"`` (phase-only) or ``"complex"``.
        detection: ``"differential"`` (a positive and a negative detector per class, the
            score their difference; Li et al. 2019) or ``"single"`` (one per class, Lin et al.).
        epochs, batch_size, lr: training (Adam, cosine decay). The phases learn slowly at small
            steps, hence lr 5e-2 (the learning-rate runs: docs/results/optical-cpu/README.md).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        photons_per_inference: photons delivered to the input plane per inference (> 0).
        shot_noise: Poisson photon counts at the detectors.
        dac_bits, adc_bits: input-modulator and detector-ADC resolution (``None``: ideal).
        phase_bits: fabricated phase levels over [0, 2 pi) (``None``: continuous).
        phase_noise_rad: static random phase error of every pixel (rad).
        layer_loss_db: absorption of each layer (dB).
        chip_seed: seed of the fabrication errors and the shot noise.
        eval_batch_size: samples per simulated batch.
        photon_curve: budgets (photons per inference into the input plane) of the
            accuracy-vs-photons curve that :meth:`DiffractiveOnn.evaluate` adds to the result's
            extras (``()``: none).
        photon_curve_samples: test samples evaluated at each budget of the curve (the first ones).
    """

    frequency_hz: float = 0.4e12 / NIR_SCALE
    n_pixels: int = 200
    pitch_um: float = 400.0 * NIR_SCALE
    spacing_mm: float = 30.0 * NIR_SCALE
    n_layers: int = 5
    input_fraction: float = 0.35
    detector_fraction: float = 0.08
    pad: int = 2
    modulation: str = "phase"
    detection: str = "differential"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 5e-2
    device: str = "auto"
    photons_per_inference: float = 1e6
    layer_loss_db: float = 0.0
    eval_batch_size: int = 256
    photon_curve: tuple[float, ...] = (30.0, 100.0, 300.0, 1e3, 1e4, 1e5)

    def __post_init__(self) -> None:
        object.__setattr__(self, "photon_curve",
                           check_budgets("photon_curve", self.photon_curve, "(100.0, 1e4)"))
        check_positive("frequency_hz", self.frequency_hz, "3.527e14 (850 nm)")
        check_positive("pitch_um", self.pitch_um, "0.4536")
        check_positive("spacing_mm", self.spacing_mm, "0.03402")
        for name, ex in (("n_pixels", "200"), ("n_layers", "5"), ("pad", "2"), ("epochs", "10"),
                         ("batch_size", "64"), ("eval_batch_size", "256"), ("photon_curve_samples", "1000")):
            check_positive(name, getattr(self, name), ex, integer=True)
        check_positive("lr", self.lr, "1e-2")
        check_choice("modulation", self.modulation, ("phase", "complex"))
        check_choice("detection", self.detection, DETECTIONS)
        check_choice("device", self.device, ("auto", "cpu", "cuda"))
        check_positive("photons_per_inference", self.photons_per_inference, "1e6")
        self._check_chip_options(phase_noise_example="0.05")
        check_nonneg("layer_loss_db", self.layer_loss_db, "0.5",
                     " (a loss in dB; a passive layer adds no light)")
        self.geometry  # noqa: B018  (validates the geometry: pitch vs aperture, fractions)

    @property
    def geometry(self) -> DiffractiveGeometry:
        return DiffractiveGeometry.from_pixels(
            frequency_hz=self.frequency_hz, n_pixels=self.n_pixels, pitch_m=self.pitch_um * 1e-6,
            spacing_m=self.spacing_mm * 1e-3, n_layers=self.n_layers, input_fraction=self.input_fraction,
            detector_fraction=self.detector_fraction, pad=self.pad)


class DiffractiveOnn(PhotonCurveEvaluation, Simulator):
    """Diffractive deep neural network: passive phase layers, detectors per class (``onn-diffractive``)."""

    cost_hint = 133.0
    paradigm = "optical"
    Config = DiffractiveConfig
    op_kinds: ClassVar[frozenset[str]] = frozenset({
        "laser_optical_zj", "dac_conversion_step", "modulator_symbol", "photodetector_read",
        "adc_conversion_step", "optical_pass", "cmp_int32", "sram_byte", "host_transfer_byte"})
    # The SLM, camera and laser of the 850 nm stack, and the shot-noise bound that holds there.
    native_presets: ClassVar[tuple[str, ...]] = ("diffractive-nir", "photonic-limit")
    # A small stack for smoke runs and compare --quick (NOT the Lin et al. geometry).
    quick: ClassVar[dict] = {"n_pixels": 24, "pitch_um": 400.0 * NIR_SCALE,
                             "spacing_mm": 5.0 * NIR_SCALE, "n_layers": 2, "input_fraction": 0.5,
                             "detector_fraction": 0.08, "epochs": 4,
                             "batch_size": 32, "lr": 5e-2, "device": "cpu"}

    def __init__(self, config: DiffractiveConfig | None = None, /, **overrides):
        super().__init__(config, **overrides)
        self.net: DiffractiveNetwork | None = None
        self.adc_fs = 1.0
        self.train_loss: list[float] = []  # mean training loss of each epoch

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(input_kinds=("image",))

    @property
    def precision(self) -> str:
        """The layers act on analog optical fields."""
        return "analog"

    # -- trained state, for re-counting without retraining ------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The layers' trained parameters and the ADC full scale (float64, as fitted)."""
        if self.net is None:
            raise ConfigError("nothing to save: the simulator has not been fitted", "call fit(task) first")
        tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        tensors["adc_fs"] = torch.tensor(self.adc_fs, dtype=torch.float64)
        return tensors

    def _load_state_tensors(self, tensors: dict[str, torch.Tensor], task: Task) -> None:
        if "adc_fs" not in tensors:
            raise ConfigError(f"{self.name} state has no 'adc_fs' tensor",
                              "pass what state_tensors() returned for this simulator")
        c = self.config
        net = DiffractiveNetwork(c.geometry, task.n_classes, c.modulation, c.detection)
        state = {k[4:]: torch.as_tensor(v) for k, v in tensors.items() if k.startswith("net.")}
        try:
            net.load_state_dict(state)
        except RuntimeError as e:  # shapes of another geometry or modulation
            raise IncompatibleError(f"{self.name} state does not fit this config's layers: {e}",
                                    "load it with the config it was fitted with") from None
        self.net = net
        self.adc_fs = float(tensors["adc_fs"])

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.net.parameters()) if self.net is not None else 0

    @property
    def device(self) -> torch.device:
        return torch_device(self.config.device)

    def _threads(self) -> int:
        return 1 if self.config.n_pixels * self.config.pad <= 128 else torch.get_num_threads()

    def _fit(self, task: Task, *, seed: int, progress: bool) -> None:
        c = self.config
        if task.n_classes > 64:
            raise ConfigError(f"{task.n_classes} classes is more detectors than the plane holds here",
                              "use fewer classes")
        torch.manual_seed(seed)
        self.net = DiffractiveNetwork(c.geometry, task.n_classes, c.modulation, c.detection)
        with torch_threads(self._threads()):
            self.train_loss = train_classifier(
                self.net, task.x_train, task.y_train, epochs=c.epochs, batch_size=c.batch_size, lr=c.lr,
                seed=seed, device=self.device, progress=progress, label=f"{self.name} train")
            with torch.no_grad():  # ADC full scale: the largest detector share on training data
                p = self._powers(task.x_train[:1024], self.net.phase.detach(), 1.0)
                self.adc_fs = float(np.percentile(p.numpy(), 99.9)) or 1.0
            self.net.cpu()

    def _powers(self, x: np.ndarray, phase: torch.Tensor, loss_amp: float) -> torch.Tensor:
        """Detector power fractions (of the input power) for images ``x``, on the current device."""
        net = self.net
        dev = next(net.parameters()).device
        out = []
        for i in range(0, len(x), self.config.eval_batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + self.config.eval_batch_size])).to(dev)
            out.append(net.detector_power(net.fields(xb, phase.to(dev), loss_amp)).cpu())
        return torch.cat(out)

    @torch.no_grad()
    def _predict(self, x: np.ndarray) -> Prediction:
        c = self.config
        gen = torch.Generator().manual_seed(c.chip_seed)
        with torch_threads(self._threads()):
            powers = self._fabricated_powers(x, gen)
        counts_mean, labels = self._detect(powers, c.photons_per_inference, gen)
        n, k, detectors = len(x), self.net.n_classes, powers.shape[1]
        input_px = self.net.input_px ** 2
        e_photon = photon_energy_j(SPEED_OF_LIGHT_M_S / c.frequency_hz)
        pixels = int(np.prod(x.shape[1:]))
        class_bytes = max(1, -(-math.ceil(math.log2(k)) // 8))
        ledger = {
            "host_transfer_byte": n * (pixels + class_bytes),  # 8-bit pixels in, class index out
            "sram_byte": n * pixels,
            "dac_conversion_step": n * input_px * conversion_steps(c.dac_bits),
            "modulator_symbol": n * input_px,
            "laser_optical_zj": int(round(n * c.photons_per_inference * e_photon / ZJ)),
            "optical_pass": n,
            "photodetector_read": n * detectors,
            "adc_conversion_step": n * detectors * conversion_steps(c.adc_bits),
            # the argmax, and a subtraction per class when the detection is differential
            "cmp_int32": n * (k - 1) + n * (detectors - k),
        }
        stats = DiffractiveRunStats(detected_photons_per_inference=float(counts_mean.sum(1).mean()),
                                    detected_fraction=float(powers.sum(1).mean()),
                                    photon_energy_j=e_photon)
        return Prediction(labels, OpLedger({kk: v for kk, v in ledger.items() if v}, n_inferences=n,
                                           resident_bytes=pixels), extras=(stats,),
                          metrics={"footprint_bytes": float(self.footprint_bytes())})

    def footprint_bytes(self) -> int:
        """The fabricated layers: every trained pixel (phase, and amplitude when complex)
        at ``phase_bits`` (``None``: at the trained float precision)."""
        c = self.config
        params = [self.net.phase] + ([self.net.amp_logit] if self.net.amp_logit is not None else [])
        n = sum(p.numel() for p in params)
        return math.ceil(n * c.phase_bits / 8) if c.phase_bits else n * self.net.phase.element_size()

    def _fabricated_powers(self, x: np.ndarray, gen: torch.Generator) -> torch.Tensor:
        """Detector power fractions ``(n, classes)`` through the layers as fabricated (float64).

        Draws the static phase errors from ``gen`` (so it must be called first, before the shot noise).
        """
        c = self.config
        phase = quantize_phase(self.net.phase.detach().double(), c.phase_bits)
        if c.phase_noise_rad:
            phase = phase + c.phase_noise_rad * torch.randn(phase.shape, generator=gen, dtype=phase.dtype)
        # the input modulator: amplitude sqrt(pixel) at dac_bits (intensity images in [0, 1])
        xq = x
        if c.dac_bits is not None:
            amp = quantize_signed(torch.from_numpy(np.sqrt(np.clip(x, 0, 1))), c.dac_bits, 1.0)
            xq = (amp ** 2).numpy().astype(np.float32)
        self.net.to(self.device)
        try:
            return self._powers(xq, phase.float(), db_to_amplitude(c.layer_loss_db)).double()
        finally:
            self.net.cpu()

    def _detect(self, powers: torch.Tensor, photons: float,
                gen: torch.Generator) -> tuple[torch.Tensor, np.ndarray]:
        """Photon counts at ``photons`` per inference (shot noise, ADC); returns (mean counts, labels)."""
        c = self.config
        counts_mean = powers * photons
        counts = intensity_detect(counts_mean, generator=gen, shot_noise=c.shot_noise)
        fs = self.adc_fs * photons
        if c.adc_bits is not None:  # unipolar ADC over [0, fs]
            levels = 2 ** c.adc_bits - 1
            counts = torch.round(counts.clamp(0, fs) / fs * levels) / levels * fs
        return counts_mean, class_scores(counts, c.detection).argmax(1).numpy()


    @torch.no_grad()
    def photon_curve(self, x: np.ndarray, y: np.ndarray) -> PhotonCurve:
        """Accuracy vs photons per inference on ``(x, y)``.

        Per budget (photons per inference into the input plane): mean photons counted by all
        detectors per inference, laser light per inference (before wall-plug losses), accuracy.
        """
        c = self.config
        gen = torch.Generator().manual_seed(c.chip_seed)
        with torch_threads(self._threads()):
            powers = self._fabricated_powers(x, gen)
        noisy = self.with_config(shot_noise=True)
        e_photon = photon_energy_j(SPEED_OF_LIGHT_M_S / c.frequency_hz)
        acc, detected = [], []
        for budget in c.photon_curve:
            counts_mean, labels = noisy._detect(powers, budget, gen)
            detected.append(float(counts_mean.sum(1).mean()))
            acc.append(float(np.mean(labels == y)))
        return PhotonCurve(PER_INFERENCE, n_samples=len(y), budgets=c.photon_curve, accuracies=acc,
                           optical_energies_j=[b * e_photon for b in c.photon_curve],
                           detected_photons=detected)

    def with_config(self, **changes) -> DiffractiveOnn:
        """The same trained layers under other device settings (no retraining)."""
        geometry_keys = {"frequency_hz", "n_pixels", "pitch_um", "spacing_mm", "n_layers", "input_fraction",
                         "detector_fraction", "pad", "modulation", "detection", "epochs", "batch_size",
                         "lr"}
        bad = sorted(set(changes) & geometry_keys)
        if bad:
            raise ConfigError(f"{bad} define the trained network and cannot change after fit",
                              "fit a new simulator with those options")
        other = type(self)(self.config, **changes)
        for k in ("net", "adc_fs", "train_loss", "_fitted_on", "_seed", "fit_wall_s"):
            setattr(other, k, getattr(self, k))
        return other


def lin2018_note() -> str:
    """One line describing the Lin et al. 2018 geometry (for reports)."""
    g = DiffractiveConfig().geometry
    return (f"{g.frequency_hz / 1e12:.1f} THz (lambda {g.wavelength_m * 1e3:.3f} mm), {g.n_pixels} x "
            f"{g.n_pixels} px of {g.pitch_m * 1e6:.0f} um, {g.spacing_m * 1e3:.0f} mm spacing, "
            f"{g.n_layers} layers")


__all__ += ["lin2018_note"]
