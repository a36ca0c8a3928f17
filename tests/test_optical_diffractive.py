"""Diffractive stacks: angular-spectrum propagation against closed forms, geometry, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nonvon.errors import ConfigError
from nonvon.simulators.optical.diffraction import (
    LIN2018,
    DiffractiveGeometry,
    DiffractiveNetwork,
    angular_spectrum_transfer,
    detector_masks,
    propagate,
)

C128 = torch.complex128


def _energy(u: torch.Tensor) -> float:
    return float((u.abs() ** 2).sum())


def test_passive_propagation_conserves_energy():
    """With every plane wave of the grid propagating (wavelength < sqrt(2) pitch), |H| = 1 and
    the periodic propagation is unitary: energy is conserved to rounding."""
    n, pitch, lam = 64, 1e-6, 1.2e-6
    h = angular_spectrum_transfer(n, pitch, lam, 37e-6, dtype=C128)
    torch.testing.assert_close(h.abs(), torch.ones(n, n, dtype=torch.float64), atol=1e-12, rtol=0)
    g = torch.Generator().manual_seed(0)
    u0 = torch.randn(n, n, dtype=C128, generator=g)
    u = propagate(u0, h, pad=1)
    assert _energy(u) == pytest.approx(_energy(u0), rel=1e-12)
    # and back: propagating by -z is the inverse (up to rounding)
    back = propagate(u, angular_spectrum_transfer(n, pitch, lam, 0.0, dtype=C128).conj() * h.conj(), pad=1)
    torch.testing.assert_close(back, u0, atol=1e-10, rtol=0)


def test_evanescent_waves_and_cropping_only_lose_energy():
    """At the Lin et al. wavelength (0.75 mm) and pitch (0.4 mm) the spectrum's corners are
    evanescent, and the crop after padding removes light that leaves the aperture: a passive
    stack can only lose energy."""
    g = LIN2018
    n = 32
    h = angular_spectrum_transfer(n * 2, g.pitch_m, g.wavelength_m, g.spacing_m, dtype=C128)
    assert (h.abs() <= 1 + 1e-12).all() and (h.abs() < 1 - 1e-3).any()
    u0 = torch.randn(n, n, dtype=C128, generator=torch.Generator().manual_seed(1))
    u = propagate(u0, h, pad=2)
    assert _energy(u) < _energy(u0)


@pytest.mark.parametrize("z_over_zr", [0.5, 1.0, 2.0])
def test_gaussian_beam_spreads_as_predicted(z_over_zr):
    """A Gaussian waist w0 = 16 wavelengths: the beam radius follows w(z) = w0 sqrt(1 + (z/zR)^2),
    zR = pi w0^2 / lambda, and the field matches the analytic (paraxial) Gaussian beam."""
    n, lam = 256, 0.5e-6
    pitch = lam
    w0 = 16 * lam
    zr = math.pi * w0 ** 2 / lam
    z = z_over_zr * zr
    x = (np.arange(n) - n / 2) * pitch
    xx, yy = np.meshgrid(x, x, indexing="ij")
    r2 = xx ** 2 + yy ** 2
    u0 = torch.from_numpy(np.exp(-r2 / w0 ** 2)).to(C128)
    u = propagate(u0, angular_spectrum_transfer(2 * n, pitch, lam, z, dtype=C128), pad=2).numpy()
    intensity = np.abs(u) ** 2
    w_measured = 2 * np.sqrt((intensity * xx ** 2).sum() / intensity.sum())  # <x^2> = w^2 / 4
    wz = w0 * math.sqrt(1 + z_over_zr ** 2)
    assert w_measured == pytest.approx(wz, rel=2e-3)
    k = 2 * math.pi / lam
    analytic = (w0 / wz) * np.exp(-r2 / wz ** 2) * np.exp(
        1j * (k * z + k * r2 * z / (2 * (z ** 2 + zr ** 2)) - math.atan(z_over_zr)))
    assert np.abs(u - analytic).max() < 1e-3


def test_lin2018_geometry():
    g = LIN2018
    assert g.wavelength_m == pytest.approx(299_792_458 / 0.4e12)  # 0.7495 mm
    assert g.n_pixels == 200 and g.pitch_m == pytest.approx(400e-6)
    assert g.aperture_m == pytest.approx(0.08) and g.spacing_m == pytest.approx(0.03)
    assert g.n_layers == 5 and g.frequency_hz == pytest.approx(0.4e12)


def test_detector_masks_lin_layout():
    m = detector_masks(100, 10, 8)
    assert m.shape == (10, 100, 100) and int(m.sum()) == 10 * 64
    assert int(m.sum(0).max()) == 1  # no overlap
    rows = sorted({int(torch.nonzero(mk)[0, 0]) for mk in m})
    per_row = [sum(int(torch.nonzero(mk)[0, 0]) == r for mk in m) for r in rows]
    assert per_row == [3, 4, 3]
    with pytest.raises(ConfigError, match="do not fit"):
        detector_masks(10, 10, 4)


def test_network_is_passive_and_differentiable():
    geo = DiffractiveGeometry.from_pixels(frequency_hz=0.4e12, n_pixels=24, pitch_m=400e-6, spacing_m=5e-3,
                                          n_layers=2, input_fraction=0.5, detector_fraction=0.125)
    net = DiffractiveNetwork(geo, 10)
    torch.manual_seed(0)
    with torch.no_grad():
        net.phase.uniform_(0, 2 * math.pi)
    x = torch.rand(4, 8, 8)
    power = net.detector_power(net.fields(x))
    assert power.shape == (4, 10) and (power >= 0).all()
    assert float(power.detach().sum(1).max()) <= 1.0  # unit input power, passive layers
    net(x).sum().backward()
    assert net.phase.grad is not None and net.phase.grad.abs().sum() > 0


def test_bad_geometry_names_the_parameter():
    with pytest.raises(ConfigError, match="wavelength_m"):
        DiffractiveGeometry(wavelength_m=0.0, pitch_m=4e-4, aperture_m=0.08, spacing_m=0.03, n_layers=5)
    with pytest.raises(ConfigError, match="wavelength_m"):
        angular_spectrum_transfer(8, 4e-4, -1e-3, 0.03)
    with pytest.raises(ConfigError, match="pitch_m=0.1 is larger than the layer"):
        DiffractiveGeometry(wavelength_m=7.5e-4, pitch_m=0.1, aperture_m=0.08, spacing_m=0.03, n_layers=5)
    with pytest.raises(ConfigError, match="whole number of pixels"):
        DiffractiveGeometry(wavelength_m=7.5e-4, pitch_m=3e-4, aperture_m=0.08, spacing_m=0.03, n_layers=5)
    with pytest.raises(ConfigError, match="n_layers"):
        DiffractiveGeometry(wavelength_m=7.5e-4, pitch_m=4e-4, aperture_m=0.08, spacing_m=0.03, n_layers=0)
    with pytest.raises(ConfigError, match="distance_m"):
        angular_spectrum_transfer(8, 4e-4, 7.5e-4, -1.0)
    with pytest.raises(ConfigError, match="frequency_hz"):
        DiffractiveGeometry.from_pixels(frequency_hz=-1.0, n_pixels=8, pitch_m=4e-4, spacing_m=0.01,
                                        n_layers=1)
    with pytest.raises(ConfigError, match="does not fit"):
        propagate(torch.zeros(8, 8, dtype=torch.complex64), torch.ones(8, 8, dtype=torch.complex64), pad=2)
