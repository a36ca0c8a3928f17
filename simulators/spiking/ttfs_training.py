"""Training time-to-first-spike classifiers with exact spike-time gradients.

The recipe is that of Göltz, Kriener et al., "Fast and energy-efficient neuromorphic deep
learning with first-spike times", Nature Machine Intelligence 3, 823-835 (2021), written
anew here for the ``tau_m = 2 tau_s`` neurons of :mod:`nonvon.simulators.spiking.ttfs_kernels`:

- **loss**: cross-entropy on a softmax over the negative output spike times,
  ``-log softmax(-t / (xi tau_s))[label]``, plus a regularizer that pulls the label
  neuron early, ``alpha (exp(t_label / (beta tau_s)) - 1)`` (the paper's eq. 15-16);
- **weight bumping** (the paper's targeted, exponential variant): after a batch's forward
  pass, the first layer whose silent fraction exceeds ``max_silent[l]`` (hidden layers:
  silent (sample, neuron) pairs; output layer: samples whose label neuron is silent) has
  the input weights of every neuron that missed a spike in the batch raised by
  ``bump x 4 theta / n_in`` (``bump`` in units of threshold of summed PSP peak); the bump
  doubles while the same layer keeps needing it in consecutive batches. A silent neuron
  has no spike time and so no gradient; this is what brings it back;
- **Adam**, learning rate decayed by ``lr_gamma`` every ``lr_step`` epochs (the paper's
  StepLR), gradient norms clipped per layer to ``max_grad_norm`` (near a grazing threshold
  crossing ``dt/dw`` diverges);
- optional Gaussian noise on hidden spike times during training (``time_noise``, in units
  of ``tau_s``; the paper trains with noise for robustness).

Silent output neurons enter the loss at the time ``t_silent`` (no gradient flows through
it; bumping is what revives them).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from nonvon.errors import ConfigError, require_positive
from nonvon.progress import progress_bar
from nonvon.simulators.spiking.ttfs_kernels import check_neuron, first_spike_times

__all__ = ["TTFSNetwork", "TTFSTrainConfig", "ttfs_loss", "train_ttfs", "train_step", "StepState",
           "predict_ttfs", "shift_images"]


class TTFSNetwork(nn.Module):
    """A fully connected TTFS network: ``sizes = (n_in, *hidden, n_out)``.

    Args:
        sizes: neurons per population, input first.
        tau_syn, theta: neuron constants (``tau_m = 2 tau_syn``).
        init: ``(mean, std)`` of each layer's initial weights, relative to threshold (see
            :meth:`reset_parameters`); default ``(2, 4)`` for every layer.
        generator: for the initial weights.
    """

    def __init__(self, sizes: Sequence[int], tau_syn: float = 1.0, theta: float = 1.0,
                 init: Sequence[tuple[float, float]] | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        check_neuron(tau_syn, theta)
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ConfigError(f"network sizes {sizes} need at least an input and an output layer "
                              "of positive width", "e.g. sizes=(784, 350, 10)")
        self.sizes, self.tau_syn, self.theta = sizes, float(tau_syn), float(theta)
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.empty(n_out, n_in))
             for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)])
        self.reset_parameters(init, generator)
        self.weight_fn: Callable[[torch.Tensor], torch.Tensor] | None = None  # e.g. fake quantization

    def reset_parameters(self, init=None, generator: torch.Generator | None = None) -> None:
        """Gaussian weights scaled to the fan-in.

        A PSP of weight ``w`` peaks at ``w / 4`` (``tau_m = 2 tau_s``). With
        ``u = 4 theta / n_in``, ``w = u (mean + std sqrt(n_in) z)``, ``z ~ N(0, 1)``: if all
        ``n_in`` inputs arrived at once, the summed peak would be ``mean theta`` on average
        with a spread of ``std theta`` across neurons.
        """
        init = list(init) if init is not None else [(2.0, 4.0)] * len(self.weights)
        if len(init) != len(self.weights):
            raise ConfigError(f"init has {len(init)} (mean, std) pairs for {len(self.weights)} "
                              "layers", "give one pair per layer")
        with torch.no_grad():
            for w, (mean, std) in zip(self.weights, init, strict=True):
                n_in = w.shape[1]
                unit = 4.0 * self.theta / n_in
                w.copy_(unit * (mean + std * math.sqrt(n_in) * torch.randn(w.shape, generator=generator)))

    def effective_weights(self) -> list[torch.Tensor]:
        if self.weight_fn is None:
            return list(self.weights)
        return [self.weight_fn(w) for w in self.weights]

    def forward(self, t_in: torch.Tensor, time_noise: float = 0.0,
                generator: torch.Generator | None = None,
                noise: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Spike times of every layer (hidden layers, then the output), ``inf`` = silent.

        With ``time_noise``, each hidden layer's times get ``time_noise x tau_syn`` times a
        standard normal: ``noise`` (one tensor per hidden layer, e.g. from
        :meth:`draw_noise`), else drawn here from ``generator``."""
        times, t = [], t_in
        ws = self.effective_weights()
        for i, w in enumerate(ws):
            t = first_spike_times(t, w, self.tau_syn, self.theta)
            if time_noise and i < len(ws) - 1:
                z = noise[i] if noise is not None else \
                    torch.randn(t.shape, generator=generator, device=t.device, dtype=t.dtype)
                t = t + time_noise * self.tau_syn * z
            times.append(t)
        return times

    def draw_noise(self, batch: int, generator: torch.Generator | None, device,
                   dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
        """Standard normals for each hidden layer's times, drawn in the order :meth:`forward`
        would draw them (so the same generator gives the same noise either way)."""
        return [torch.randn((batch, n), generator=generator, device=device, dtype=dtype)
                for n in self.sizes[1:-1]]


def ttfs_loss(t_out: torch.Tensor, y: torch.Tensor, *, tau_syn: float = 1.0, xi: float = 0.2,
              alpha: float = 0.005, beta: float = 1.0, t_silent: float = 10.0) -> torch.Tensor:
    """Göltz et al.'s loss (eq. 15-16): softmax cross-entropy on ``-t / (xi tau_s)`` plus
    ``alpha (exp(t_label / (beta tau_s)) - 1)``; silent outputs count as ``t_silent``.

    Args:
        t_out: ``(B, n_classes)`` output spike times.
        y: ``(B,)`` labels.
    """
    t = torch.where(torch.isfinite(t_out), t_out, torch.full_like(t_out, t_silent))
    ce = nn.functional.cross_entropy(-t / (xi * tau_syn), y)
    t_label = t.gather(1, y.unsqueeze(1)).squeeze(1)
    reg = alpha * (torch.exp(t_label.clamp(max=t_silent) / (beta * tau_syn)) - 1.0)
    return ce + reg.mean()


def predict_ttfs(t_out: torch.Tensor) -> torch.Tensor:
    """The class whose output neuron spikes first (class 0 when none spikes, counted wrong
    only if that is not the label; a silent network is rare after training)."""
    return torch.argmin(torch.nan_to_num(t_out, posinf=torch.finfo(t_out.dtype).max), dim=1)


@dataclasses.dataclass(frozen=True)
class TTFSTrainConfig:
    """Hyper-parameters of :func:`train_ttfs` (defaults: our MNIST setting; the paper's
    values are noted where they differ). Validated at construction."""

    epochs: int = 60
    batch_size: int = 100
    lr: float = 5e-3               # paper, MNIST: 0.005 (Adam)
    lr_step: int = 15              # paper: StepLR(gamma 0.9, every 15 epochs, 150 epochs)
    lr_gamma: float = 0.5
    xi: float = 0.2                # paper: 0.2
    alpha: float = 0.005           # paper: 0.005
    beta: float = 1.0              # paper: 1
    max_grad_norm: float = 1.0     # paper clips the update norm (0.2 in its weight units)
    bump: float = 0.5              # x 4 theta / n_in added to a silent neuron's input weights
    max_silent: tuple[float, ...] = (0.15, 0.0)  # per layer (hidden..., output); paper (0.15, 0.05)
    time_noise: float = 0.1        # paper trains with noise on spike times
    weight_decay: float = 0.0
    t_silent: float = 10.0
    cuda_graph: bool = True        # on CUDA: replay the training step as one CUDA graph

    def __post_init__(self) -> None:
        if not isinstance(self.cuda_graph, bool):
            raise ConfigError(f"cuda_graph={self.cuda_graph!r} must be True or False",
                              "cuda_graph=False trains step by step (eager)")
        for name in ("epochs", "batch_size", "lr_step"):
            require_positive(name, getattr(self, name))
        for name in ("lr", "xi", "beta", "max_grad_norm", "t_silent"):
            require_positive(name, float(getattr(self, name)), float)
        for name in ("alpha", "bump", "time_noise", "weight_decay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"{name}={v!r} must be a finite number >= 0", f"e.g. {name}=0.0")
        if not 0 < self.lr_gamma <= 1:
            raise ConfigError(f"lr_gamma={self.lr_gamma} must be in (0, 1]", "e.g. lr_gamma=0.9")
        object.__setattr__(self, "max_silent", tuple(float(v) for v in self.max_silent))
        if any(not 0 <= v <= 1 for v in self.max_silent):
            raise ConfigError(f"max_silent={self.max_silent} must lie in [0, 1]",
                              "e.g. max_silent=(0.3, 0.0): hidden, output")


def _silent_limits(cfg: TTFSTrainConfig, n_layers: int, device: torch.device) -> torch.Tensor:
    """``max_silent`` per layer (the last value repeats), on ``device`` once per training."""
    limits = list(cfg.max_silent) + [cfg.max_silent[-1]] * (n_layers - len(cfg.max_silent))
    return torch.tensor(limits[:n_layers], device=device)


def _bump(net: TTFSNetwork, times: list[torch.Tensor], y: torch.Tensor, cfg: TTFSTrainConfig,
          last: torch.Tensor, scale: torch.Tensor, limits: torch.Tensor
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Bump the first layer with too many missing spikes (see the module docstring).

    Every decision stays on the device (no host synchronisation per training step, which on a
    GPU would stall the queue of kernels): ``last`` is the layer bumped at the previous step
    (``-1``: none) and ``scale`` the bump scale used then, both 0-d tensors; ``limits`` comes
    from :func:`_silent_limits`.

    Returns:
        The layer bumped now (``-1``: none) and the scale to carry (doubled when the same
        layer is bumped twice in a row, back to 1 for another layer, kept when none is).
    """
    with torch.no_grad():
        silents, fracs = [], []
        for i, t in enumerate(times):
            silent = ~torch.isfinite(t)
            if i == len(times) - 1:  # only label neurons: silent rivals are what we want
                silent = silent & nn.functional.one_hot(y, t.shape[1]).bool()
                fracs.append(silent.any(1).float().mean())
            else:
                fracs.append(silent.float().mean())
            silents.append(silent)
        over = torch.stack(fracs) > limits
        bumped = torch.where(over.any(), torch.argmax(over.to(torch.int8)), -1)
        new_scale = torch.where(bumped == last, 2.0 * scale, torch.ones_like(scale))
        for i, (w, silent) in enumerate(zip(net.weights, silents, strict=True)):
            rows = silent.any(0) & (bumped == i)
            step = (new_scale * (cfg.bump * 4.0 * net.theta / w.shape[1])).to(w.dtype)
            w.add_(torch.where(rows, step, 0.0).unsqueeze(1))
        return bumped, torch.where(bumped >= 0, new_scale, scale)


@dataclasses.dataclass
class StepState:
    """What a training step reads and updates in place (tensors on the training device, so
    that a step needs no host synchronisation and could be captured as a CUDA graph).

    ``bumped`` and ``scale`` carry the weight-bumping rule between steps (see :func:`_bump`);
    the rest sum over an epoch: loss x samples, correct predictions, silent fraction x
    samples per layer, steps that bumped.
    """

    bumped: torch.Tensor
    scale: torch.Tensor
    limits: torch.Tensor
    loss_sum: torch.Tensor
    correct: torch.Tensor
    silent: torch.Tensor
    bumps: torch.Tensor

    @classmethod
    def new(cls, cfg: TTFSTrainConfig, n_layers: int, device) -> StepState:
        return cls(bumped=torch.tensor(-1, device=device),
                   scale=torch.tensor(1.0, dtype=torch.float64, device=device),
                   limits=_silent_limits(cfg, n_layers, device),
                   loss_sum=torch.zeros((), device=device), correct=torch.zeros((), device=device),
                   silent=torch.zeros(n_layers, device=device),
                   bumps=torch.zeros((), dtype=torch.long, device=device))

    def new_epoch(self) -> None:
        for t in (self.loss_sum, self.correct, self.silent, self.bumps):
            t.zero_()


def train_step(net: TTFSNetwork, opt: torch.optim.Optimizer, cfg: TTFSTrainConfig,
               xb: torch.Tensor, yb: torch.Tensor, noise: Sequence[torch.Tensor] | None,
               state: StepState) -> None:
    """One step of :func:`train_ttfs` on a batch (gradients must be cleared before): forward
    with ``noise`` on the hidden times, Göltz et al.'s loss, backward, NaN guard and per-layer
    clipping, the optimizer, weight bumping, the epoch sums. Updates ``state`` in place."""
    times = net(xb, cfg.time_noise, noise=noise)
    loss = ttfs_loss(times[-1], yb, tau_syn=net.tau_syn, xi=cfg.xi, alpha=cfg.alpha,
                     beta=cfg.beta, t_silent=cfg.t_silent)
    loss.backward()
    for w in net.weights:
        if w.grad is not None:
            torch.nan_to_num_(w.grad, nan=0.0, posinf=0.0, neginf=0.0)
            torch.nn.utils.clip_grad_norm_([w], cfg.max_grad_norm)
    opt.step()
    with torch.no_grad():
        if cfg.bump:
            bumped, scale = _bump(net, [t.detach() for t in times], yb, cfg, state.bumped,
                                  state.scale, state.limits)
            state.bumped.copy_(bumped)
            state.scale.copy_(scale)
            state.bumps += bumped >= 0
        state.loss_sum += loss.detach() * len(yb)
        state.correct += (predict_ttfs(times[-1]) == yb).sum()
        state.silent += torch.stack([(~torch.isfinite(t)).float().mean() for t in times]) * len(yb)


class _GraphedStep:
    """:func:`train_step` recorded once as a CUDA graph and replayed for every full batch.

    An eager step launches a few hundred small kernels, and on a GPU the launches, not the
    arithmetic, set its time (docs/results/ttfs-step-h200: 7.7 ms eager, 2.9 ms replayed, on
    an H200). The graph reads its batch from static buffers, so each call copies the batch in
    and replays. The first ``WARMUP`` calls run eagerly on a side stream, as capturing
    requires; a batch of another size (the ragged last one) also runs eagerly. The optimizer
    must be ``capturable`` with a tensor learning rate (changed in place), so the eager and
    replayed steps compute the same thing: training with or without the graph gives the
    same weights.
    """

    WARMUP = 3

    def __init__(self, net: TTFSNetwork, opt: torch.optim.Optimizer, cfg: TTFSTrainConfig,
                 state: StepState, batch: int, device: torch.device):
        self.net, self.opt, self.cfg, self.state, self.batch = net, opt, cfg, state, batch
        self.x = torch.zeros(batch, net.sizes[0], device=device)
        self.y = torch.zeros(batch, dtype=torch.long, device=device)
        self.noise = [torch.zeros(batch, n, device=device) for n in net.sizes[1:-1]] \
            if cfg.time_noise else None
        self.graph: torch.cuda.CUDAGraph | None = None
        self.warm = 0

    def _eager(self, xb, yb, noise) -> None:
        self.opt.zero_grad(set_to_none=True)
        train_step(self.net, self.opt, self.cfg, xb, yb, noise, self.state)

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor, noise) -> None:
        if len(yb) != self.batch:
            return self._eager(xb, yb, noise)
        if self.graph is None and self.warm < self.WARMUP:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self._eager(xb, yb, noise)
            torch.cuda.current_stream().wait_stream(side)
            self.warm += 1
            return None
        if self.graph is None:
            self.graph = torch.cuda.CUDAGraph()
            self.opt.zero_grad(set_to_none=True)  # the graph's backward then writes fresh grads
            with torch.cuda.graph(self.graph):    # recorded only: the replay below runs it
                train_step(self.net, self.opt, self.cfg, self.x, self.y, self.noise, self.state)
        self.x.copy_(xb)
        self.y.copy_(yb)
        for buf, z in zip(self.noise or (), noise or (), strict=True):
            buf.copy_(z)
        self.graph.replay()
        return None


def shift_images(side: int, max_shift: int, fill: float):
    """An ``augment`` for :func:`train_ttfs`: shift each image of input times (``side x side``,
    flattened) by up to ``max_shift`` pixels in each direction, filling with ``fill`` (the
    spike time of a black pixel)."""

    def augment(t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        B = len(t)
        img = t.view(B, side, side)
        pad = torch.nn.functional.pad(img, (max_shift,) * 4, value=fill)
        dx, dy = torch.randint(0, 2 * max_shift + 1, (2, B, 1), generator=gen).to(t.device)
        ar = torch.arange(side, device=t.device)
        rows, cols = (dy + ar).unsqueeze(2), (dx + ar).unsqueeze(1)        # (B, side, 1), (B, 1, side)
        b = torch.arange(B, device=t.device).view(B, 1, 1)
        return pad[b, rows, cols].reshape(B, -1)

    return augment


def train_ttfs(net: TTFSNetwork, t_x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor,
               cfg: TTFSTrainConfig, *, seed: int = 0, device: str | torch.device = "cpu",
               progress: bool = False, label: str = "ttfs train",
               time_budget_s: float | None = None,
               on_epoch: Callable[[int, dict], None] | None = None,
               augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
               ) -> list[dict]:
    """Train ``net`` on encoded input times ``t_x`` ``(N, n_in)`` and labels ``y``.

    Args:
        time_budget_s: a wall-clock budget. After the first epoch the run is re-planned to
            the epochs that fit (at most ``cfg.epochs``), with the learning-rate steps
            scaled to keep their place in the run; it also stops after any epoch that
            crosses the budget (the history says how many epochs ran).
        on_epoch: called after each epoch with ``(epoch, record)`` (e.g. to evaluate).
        augment: ``f(t_batch, generator) -> t_batch``, applied to each training batch of
            input times (e.g. :func:`shift_images`).

    Returns:
        One record per epoch: mean loss, training accuracy, silent fractions per layer,
        number of bump rounds, wall seconds.
    """
    gen = torch.Generator().manual_seed(seed)
    dev = torch.device(device)
    noise_gen = torch.Generator(device=dev).manual_seed(seed + 1) if cfg.time_noise else None
    net.to(dev).train()
    tx = torch.as_tensor(t_x, dtype=torch.float32).to(dev)
    ty = torch.as_tensor(y, dtype=torch.long).to(dev)
    n = len(ty)
    # on CUDA, Adam keeps its step count and learning rate on the device (``capturable``), with
    # or without the graph, so the two give the same weights
    cuda = dev.type == "cuda"
    opt = torch.optim.Adam(net.parameters(), lr=torch.tensor(cfg.lr, device=dev) if cuda else cfg.lr,
                           weight_decay=cfg.weight_decay, capturable=cuda)
    planned, lr_step = cfg.epochs, cfg.lr_step
    state = StepState.new(cfg, len(net.weights), dev)
    graphed = _GraphedStep(net, opt, cfg, state, cfg.batch_size, dev) if cuda and cfg.cuda_graph else None
    history: list[dict] = []
    start = time.perf_counter()
    with progress_bar(progress) as bar:
        task = bar.add_task(label, total=cfg.epochs, status="")
        for epoch in range(cfg.epochs):
            if epoch >= planned:
                break
            lr = cfg.lr * cfg.lr_gamma ** (epoch // lr_step)
            for group in opt.param_groups:
                if torch.is_tensor(group["lr"]):
                    group["lr"].fill_(lr)  # in place: a captured step reads it there
                else:
                    group["lr"] = lr
            order = torch.randperm(n, generator=gen).to(dev)
            state.new_epoch()
            for i in range(0, n, cfg.batch_size):
                idx = order[i:i + cfg.batch_size]
                xb, yb = tx[idx], ty[idx]
                if augment is not None:
                    xb = augment(xb, gen)
                noise = net.draw_noise(len(idx), noise_gen, dev) if cfg.time_noise else None
                if graphed is not None:
                    graphed(xb, yb, noise)
                else:
                    opt.zero_grad(set_to_none=True)
                    train_step(net, opt, cfg, xb, yb, noise, state)
            rec = {"epoch": epoch + 1, "loss": float(state.loss_sum) / n,
                   "train_accuracy": float(state.correct) / n,
                   "silent": [float(s) / n for s in state.silent], "bump_rounds": int(state.bumps),
                   "wall_s": time.perf_counter() - start, "lr": lr}
            if on_epoch is not None:
                on_epoch(epoch + 1, rec)
            history.append(rec)
            if time_budget_s is not None and epoch < 2:  # epoch 2: warm (no start-up costs)
                last = rec["wall_s"] - (history[-2]["wall_s"] if epoch else 0.0)
                fits = int(max(time_budget_s - rec["wall_s"], 0.0) // max(last, 1e-9))
                planned = max(epoch + 1, min(cfg.epochs, epoch + 1 + fits))
                lr_step = max(1, round(cfg.lr_step * planned / cfg.epochs))
                bar.update(task, total=planned)
            bar.update(task, advance=1, status=f"loss {rec['loss']:.3f} acc {rec['train_accuracy']:.3f}")
            if time_budget_s is not None and rec["wall_s"] >= time_budget_s:
                break
    net.eval()
    return history
