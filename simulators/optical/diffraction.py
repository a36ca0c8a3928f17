"""Diffractive optical networks: phase-only layers and angular-spectrum free-space propagation.

A diffractive deep neural network (D2NN; Lin et al., "All-optical machine learning using
diffractive deep neural networks", Science 361, 1004 (2018)) is a stack of thin transmissive
layers, each a grid of pixels that delays the light passing it by a trainable phase. Between
layers the field propagates through free space; the class is the detector region (one per
class) that collects the most power.

Propagation uses the angular-spectrum method (Goodman, *Introduction to Fourier Optics*,
3rd ed., section 3.10): the field's 2-D spectrum is multiplied by

    H(fx, fy) = exp(i 2 pi z sqrt(1/lambda^2 - fx^2 - fy^2))      (propagating, |H| = 1)
              = exp(-2 pi z sqrt(fx^2 + fy^2 - 1/lambda^2))        (evanescent, decays)

on a grid zero-padded by ``pad`` (so that light leaving the aperture is not wrapped back in by
the FFT); the field is cropped back to the layer's aperture after each step, which is where
light that misses the next layer is lost. The propagation is exact for the sampled,
band-limited field (no paraxial approximation).

``LIN2018`` is the geometry of the MNIST classifier of Lin et al. 2018: 0.4 THz, 200 x 200
pixels of 400 um, 30 mm between layers, 5 layers.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nonvon.errors import ConfigError

__all__ = [
    "DiffractiveGeometry", "LIN2018", "angular_spectrum_transfer", "propagate", "detector_masks",
    "DETECTIONS", "class_scores", "detectors_per_class",
    "DiffractiveNetwork", "SPEED_OF_LIGHT_M_S",
]

SPEED_OF_LIGHT_M_S = 299_792_458.0


def _positive(name: str, value, example: str, *, integer: bool = False) -> None:
    ok = (isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.floating)))
    if isinstance(value, bool) or not ok or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}={value!r} must be a positive {'integer' if integer else 'number'}",
                          f"e.g. {name}={example}")


@dataclasses.dataclass(frozen=True)
class DiffractiveGeometry:
    """The physical layout of a diffractive stack (SI units).

    Args:
        wavelength_m: free-space wavelength (> 0).
        pitch_m: pixel pitch of every layer (> 0, at most the aperture).
        aperture_m: side of the square layers; ``aperture_m / pitch_m`` pixels per side.
        spacing_m: distance between consecutive planes (input, layers, detector).
        n_layers: number of diffractive layers.
        input_fraction: side of the input image as a fraction of the aperture.
        detector_fraction: side of each square detector as a fraction of the aperture.
        pad: zero-padding factor of the propagation grid (>= 1; 2 avoids wrap-around).
    """

    wavelength_m: float
    pitch_m: float
    aperture_m: float
    spacing_m: float
    n_layers: int
    input_fraction: float = 0.35
    detector_fraction: float = 0.08
    pad: int = 2

    def __post_init__(self) -> None:
        _positive("wavelength_m", self.wavelength_m, "7.5e-4 (0.4 THz)")
        _positive("pitch_m", self.pitch_m, "4e-4")
        _positive("aperture_m", self.aperture_m, "0.08")
        _positive("spacing_m", self.spacing_m, "0.03")
        _positive("n_layers", self.n_layers, "5", integer=True)
        _positive("pad", self.pad, "2", integer=True)
        if self.pitch_m > self.aperture_m:
            raise ConfigError(f"pitch_m={self.pitch_m} is larger than the layer "
                              f"(aperture_m={self.aperture_m})",
                              "a layer needs at least one pixel: make pitch_m <= aperture_m")
        n = self.aperture_m / self.pitch_m
        if abs(n - round(n)) > 1e-6 * n:
            raise ConfigError(f"aperture_m / pitch_m = {n:.6g} is not a whole number of pixels",
                              f"e.g. aperture_m={round(n) * self.pitch_m:.6g}")
        for name in ("input_fraction", "detector_fraction"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise ConfigError(f"{name}={v!r} must be in (0, 1]", f"e.g. {name}=0.3")

    @property
    def n_pixels(self) -> int:
        return int(round(self.aperture_m / self.pitch_m))

    @property
    def frequency_hz(self) -> float:
        return SPEED_OF_LIGHT_M_S / self.wavelength_m

    @classmethod
    def from_pixels(cls, *, frequency_hz: float | None = None, wavelength_m: float | None = None,
                    n_pixels: int, pitch_m: float, spacing_m: float, n_layers: int,
                    **kw) -> DiffractiveGeometry:
        """Build from a pixel count (and a frequency or a wavelength)."""
        if (frequency_hz is None) == (wavelength_m is None):
            raise ConfigError("give exactly one of frequency_hz and wavelength_m", "e.g. frequency_hz=0.4e12")
        if frequency_hz is not None:
            _positive("frequency_hz", frequency_hz, "0.4e12")
            wavelength_m = SPEED_OF_LIGHT_M_S / frequency_hz
        _positive("n_pixels", n_pixels, "200", integer=True)
        _positive("pitch_m", pitch_m, "4e-4")
        return cls(wavelength_m=wavelength_m, pitch_m=pitch_m, aperture_m=n_pixels * pitch_m,
                   spacing_m=spacing_m, n_layers=n_layers, **kw)


LIN2018 = DiffractiveGeometry.from_pixels(frequency_hz=0.4e12, n_pixels=200, pitch_m=400e-6,
                                          spacing_m=30e-3, n_layers=5)
"""Lin et al., Science 361, 1004 (2018): 0.4 THz, 200 x 200 pixels of 400 um, 3 cm spacing, 5 layers."""


def angular_spectrum_transfer(n: int, pitch_m: float, wavelength_m: float, distance_m: float,
                              *, dtype: torch.dtype = torch.complex64) -> torch.Tensor:
    """The ``(n, n)`` angular-spectrum transfer function on an FFT grid of ``n`` x ``n`` samples."""
    _positive("wavelength_m", wavelength_m, "7.5e-4")
    _positive("pitch_m", pitch_m, "4e-4")
    if not math.isfinite(distance_m) or distance_m < 0:
        raise ConfigError(f"distance_m={distance_m!r} must be >= 0", "e.g. distance_m=0.03")
    f = np.fft.fftfreq(n, d=pitch_m)
    fx, fy = np.meshgrid(f, f, indexing="ij")
    arg = 1.0 / wavelength_m ** 2 - fx ** 2 - fy ** 2
    kz = 2 * np.pi * np.sqrt(np.abs(arg))
    h = np.where(arg >= 0, np.exp(1j * kz * distance_m), np.exp(-kz * distance_m))
    return torch.from_numpy(h).to(dtype)


def propagate(field: torch.Tensor, transfer: torch.Tensor, pad: int = 2) -> torch.Tensor:
    """Propagate ``(..., n, n)`` complex fields with a transfer function of the padded grid.

    The field is zero-padded to ``transfer``'s size (``n * pad``), propagated and cropped back
    to its own ``n x n`` window; ``pad=1`` propagates on the periodic grid (no crop).
    """
    n = field.shape[-1]
    m = transfer.shape[-1]
    if field.shape[-2] != n or m != n * pad:
        raise ConfigError(f"field of shape {tuple(field.shape[-2:])} does not fit a transfer function of "
                          f"{tuple(transfer.shape)} with pad={pad}",
                          "build the transfer function on n * pad samples")
    if pad == 1:
        return torch.fft.ifft2(torch.fft.fft2(field) * transfer)
    # fft2 with s= zero-pads at the far edges rather than around the field; on the periodic FFT
    # grid that is a circular shift of the centred layout, which a shift-invariant propagation
    # undoes when the same window is cropped back, and it saves a padded copy per step.
    out = torch.fft.ifft2(torch.fft.fft2(field, s=(m, m)) * transfer)
    return out[..., :n, :n]


def detector_masks(n: int, n_classes: int, size: int) -> torch.Tensor:
    """``(n_classes, n, n)`` boolean masks of square detectors, in rows centred on the plane.

    Rows hold ``ceil(sqrt(n_classes))`` detectors at most, the middle rows the most (10 classes:
    3-4-3, the arrangement of Lin et al. 2018, Fig. 2).
    """
    if n_classes < 1 or size < 1:
        raise ConfigError(f"n_classes={n_classes}, size={size} must be >= 1")
    per_row = math.ceil(math.sqrt(n_classes))
    n_rows = math.ceil(n_classes / per_row)
    rows = [n_classes // n_rows + (1 if i < n_classes % n_rows else 0) for i in range(n_rows)]
    rows = sorted(rows, key=lambda r: -r)
    rows = rows[1::2][::-1] + rows[0::2]  # largest rows in the middle
    gap = size
    if per_row * size + (per_row - 1) * gap > n or n_rows * size + (n_rows - 1) * gap > n:
        raise ConfigError(f"{n_classes} detectors of {size} px do not fit on a {n} x {n} plane",
                          "use smaller detectors (detector_fraction) or more pixels")
    masks = torch.zeros(n_classes, n, n, dtype=torch.bool)
    y0 = (n - (n_rows * size + (n_rows - 1) * gap)) // 2
    k = 0
    for r, count in enumerate(rows):
        x0 = (n - (count * size + (count - 1) * gap)) // 2
        y = y0 + r * (size + gap)
        for j in range(count):
            x = x0 + j * (size + gap)
            masks[k, y:y + size, x:x + size] = True
            k += 1
    return masks


DETECTIONS = ("single", "differential")


def detectors_per_class(detection: str) -> int:
    return 2 if detection == "differential" else 1


def class_scores(detected: torch.Tensor, detection: str) -> torch.Tensor:
    """Class scores from detector readings ``(B, n_detectors)`` (powers or photon counts)."""
    if detection == "differential":
        return detected[:, 0::2] - detected[:, 1::2]
    return detected


class DiffractiveNetwork(nn.Module):
    """A trainable diffractive stack: input plane, ``n_layers`` modulation layers, detector plane.

    Args:
        geometry: a :class:`DiffractiveGeometry` (e.g. ``LIN2018``).
        n_classes: classes.
        modulation: ``"phase"`` (phase-only pixels, as in Lin et al.) or ``"complex"`` (phase and
            a passive amplitude in [0, 1]).
        detection: ``"single"``: one detector per class, the class is the brightest (Lin et al.
            2018); ``"differential"``: a positive and a negative detector per class, the class
            score is their difference (differential detection, Li et al., Advanced Photonics 1,
            046001, 2019), which lets a phase-only stack express negative evidence.

    ``detector_power(fields(images))`` takes ``(B, h, w)`` images in [0, 1], resizes them onto
    the central ``input_fraction`` of the input plane as field amplitudes, and returns the power
    collected by each detector, ``(B, n_detectors)`` (``single``: one per class; ``differential``:
    positive and negative detectors interleaved, class ``c`` at ``2c`` and ``2c + 1``), for an
    input of unit total power; ``forward`` returns the class logits.
    """

    def __init__(self, geometry: DiffractiveGeometry, n_classes: int, modulation: str = "phase",
                 detection: str = "single"):
        super().__init__()
        if modulation not in ("phase", "complex"):
            raise ConfigError(f"unknown modulation {modulation!r}", "use 'phase' or 'complex'")
        if detection not in DETECTIONS:
            raise ConfigError(f"unknown detection {detection!r}", f"use one of {DETECTIONS}")
        self.geometry = g = geometry
        self.modulation = modulation
        self.detection = detection
        self.n_classes = n_classes
        n = g.n_pixels
        self.phase = nn.Parameter(torch.zeros(g.n_layers, n, n))
        self.amp_logit = (nn.Parameter(torch.full((g.n_layers, n, n), 3.0)) if modulation == "complex"
                          else None)
        self.register_buffer("transfer", angular_spectrum_transfer(n * g.pad, g.pitch_m, g.wavelength_m,
                                                                   g.spacing_m), persistent=False)
        size = max(1, int(round(g.detector_fraction * n)))
        self.register_buffer("masks", detector_masks(n, detectors_per_class(detection) * n_classes,
                                                     size).float(), persistent=False)
        self.input_px = max(1, int(round(g.input_fraction * n)))
        # logits = scale * detector power / total detected power (a learnable temperature)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(10.0)))

    @property
    def n_pixels(self) -> int:
        return self.geometry.n_pixels

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, h, w)`` -> unit-power input fields ``(B, n, n)`` (amplitude = sqrt(intensity))."""
        if images.dim() != 3:
            raise ConfigError(f"images of shape {tuple(images.shape)}", "pass (batch, height, width)")
        n, p = self.n_pixels, self.input_px
        img = F.interpolate(images[:, None].float(), size=(p, p), mode="bilinear", align_corners=False)[:, 0]
        img = img.clamp_min(0)
        lo = (n - p) // 2
        field = F.pad(img.sqrt(), (lo, n - p - lo, lo, n - p - lo))
        norm = field.pow(2).sum((-2, -1), keepdim=True).clamp_min(1e-30).sqrt()
        return (field / norm).to(torch.complex64)

    def modulations(self, phase: torch.Tensor | None = None) -> torch.Tensor:
        """Complex transmission of each layer, ``(n_layers, n, n)``; ``phase`` overrides the trained one."""
        phase = self.phase if phase is None else phase
        t = torch.polar(torch.ones_like(phase), phase)
        if self.amp_logit is not None:
            t = t * torch.sigmoid(self.amp_logit)
        return t

    def fields(self, images: torch.Tensor, phase: torch.Tensor | None = None,
               layer_loss_amplitude: float = 1.0) -> torch.Tensor:
        """The field on the detector plane, ``(B, n, n)``."""
        u = propagate(self.encode(images), self.transfer, self.geometry.pad)
        for t in self.modulations(phase):
            u = u * t if layer_loss_amplitude == 1.0 else u * (t * layer_loss_amplitude)
            u = propagate(u, self.transfer, self.geometry.pad)
        return u

    def detector_power(self, field: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bxy,kxy->bk", field.abs() ** 2, self.masks)

    def logits(self, power: torch.Tensor) -> torch.Tensor:
        # Normalized by the total detected power, which is common to all classes, so the argmax
        # of the logits is the argmax of the raw scores that class_scores gives the detectors.
        p = power / power.sum(1, keepdim=True).clamp_min(1e-30)
        return self.log_temperature.exp() * class_scores(p, self.detection)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits(self.detector_power(self.fields(images)))
