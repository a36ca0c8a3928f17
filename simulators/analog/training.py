"""Hardware-aware training with IBM's aihwkit-lightning (an optional dependency: ``pip install
nonvon[analog]``).

The digital network is converted to aihwkit-lightning's analog layers
(``aihwkit_lightning.nn.conversion.convert_to_analog``) with a ``TorchInferenceRPUConfig``
that states the chip: inputs split onto tiles of ``tile_rows`` rows, a learned input range per
tile, the DAC and ADC resolutions and the ADC bound, per-column Gaussian weight clipping,
per-column weight-noise injection and output noise during training, and, with a limited number
of conductance levels, the weights discretized per column; aihwkit-lightning's own
``clip_weights`` clips them during training. Nothing of this is rewritten here: nonvon only
reads the trained weights, biases and input ranges back (``analog_layers``).
"""

from __future__ import annotations

import contextlib
import io

import torch
from torch import nn

from nonvon.errors import ConfigError
from nonvon.models.training import train_classifier

__all__ = ["aihwkit_lightning", "rpu_config", "to_analog", "train_hwa", "analog_layers"]


def aihwkit_lightning():
    """The aihwkit_lightning module, or a ConfigError naming the fix."""
    try:
        # its import prints a notice when Triton is absent; keep our output clean
        with contextlib.redirect_stdout(io.StringIO()):
            import aihwkit_lightning
            import aihwkit_lightning.nn  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"hardware-aware training needs IBM's aihwkit-lightning ({e})",
                          "pip install 'nonvon[analog]' (aihwkit-lightning 2.1.0, pure Python)") from None
    return aihwkit_lightning


def rpu_config(c, *, training_noise: bool = True):
    """The aihwkit-lightning ``TorchInferenceRPUConfig`` for simulator config ``c``."""
    aihwkit_lightning()
    from aihwkit_lightning.simulator.configs import (
        TorchInferenceRPUConfig,
        WeightClipType,
        WeightNoiseInjectionType,
        WeightQuantizationType,
    )

    r = TorchInferenceRPUConfig()
    r.mapping.max_input_size = c.tile_rows
    r.pre_post.input_range.enable = True
    r.pre_post.input_range.learn_input_range = True
    r.pre_post.input_range.init_from_data = 50
    r.pre_post.input_range.init_value = 3.0
    r.forward.inp_res = 2**c.dac_bits - 2
    r.forward.out_res = 2**c.adc_bits - 2
    r.forward.out_bound = c.adc_range
    r.clip.type = WeightClipType.LAYER_GAUSSIAN_PER_CHANNEL
    r.clip.sigma = c.clip_sigma
    if training_noise:
        r.forward.out_noise = c.train_out_noise
        r.modifier.noise_type = WeightNoiseInjectionType.ADD_NORMAL_PER_CHANNEL
        r.modifier.std_dev = c.train_weight_noise
    if c.conductance_levels:
        r.modifier.quantization_type = WeightQuantizationType.DISCRETIZE_PER_CHANNEL
        r.modifier.res = 2 * (c.conductance_levels - 1)
    return r


def to_analog(network: nn.Module, rpu) -> nn.Module:
    aihwkit_lightning()
    from aihwkit_lightning.nn.conversion import convert_to_analog

    return convert_to_analog(network, rpu, ensure_analog_root=False)


def analog_layers(network: nn.Module) -> list[nn.Module]:
    """The network's analog linear and convolution layers, in forward order."""
    from aihwkit_lightning.nn import AnalogConv2d, AnalogLinear

    return [m for m in network.modules() if isinstance(m, (AnalogLinear, AnalogConv2d))]


def train_hwa(network: nn.Module, x, y, *, epochs: int, batch_size: int, lr: float, seed: int,
              device: torch.device, progress: bool, label: str) -> list[float]:
    """nonvon's training loop (:func:`~nonvon.models.training.train_classifier`: Adam, cosine
    decay) with aihwkit-lightning's weight clip (``clip_weights``) applied before every forward
    pass and once at the end, as its ``AnalogOptimizer`` applies it after every step."""
    layers = analog_layers(network)

    def clip(*_) -> None:
        with torch.no_grad():
            for layer in layers:
                layer.clip_weights()

    handle = network.register_forward_pre_hook(clip)
    try:
        return train_classifier(network, x, y, epochs=epochs, batch_size=batch_size, lr=lr,
                                seed=seed, device=device, progress=progress, label=label)
    finally:
        handle.remove()
        clip()
