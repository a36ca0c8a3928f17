"""Designed item memory for record-based (ID-level) binary HDC at low dimension (issue #24).

:class:`DesignedIDLevelEncoder` keeps the record-based encoding of
:class:`~nonvon.simulators.hdc.encoders.IDLevelEncoder` unchanged --
``majority_j(ID_j XOR L[q(x_j)])`` with a fixed tie-break hypervector, the same XOR, popcount
and compare operations per sample, the same item-memory size -- and *chooses the contents*
of the ID (key) and level hypervectors on the labelled training set instead of drawing them
at random. So at equal ``D`` it costs exactly what the random ID-level encoder costs; only
the accuracy differs.

What follows the paper and what is ours
---------------------------------------
The idea is that of Basaklar, Tuncel, Narayana, Gumussoy and Ogras, "Hypervector Design for
Efficient Hyperdimensional Computing on Edge Devices", tinyML Research Symposium 2021
(arXiv 2103.06709). Checked in the arXiv abstract: keep conventional HDC, *design the
hypervectors* by optimization instead of drawing them at random, to minimize ``D`` while
keeping or raising accuracy; the design is posed as a multi-objective problem (accuracy vs
robustness to noise, with Pareto-front solutions); reported: more than 32x smaller ``D`` at
equal or better accuracy than conventional HDC (arXiv v1; the tinyML/NSF-repository version
of the abstract says more than 128x). The paper's body (its objective functions, optimizer,
datasets and per-dataset numbers) could NOT be read here: the `search` corpora hold only
its abstract (arXiv, ar5iv, OpenReview, NSF PAR) and a third-party summary (bohrium.com,
not a primary source) saying that the design spreads the sample hypervectors of different
classes apart and clusters those of one class, keeps the dependency between level
hypervectors, and was evaluated on four health applications. Everything below beyond that
is OURS, an optimized hypervector design in the paper's spirit, not a reproduction:

* the design variables: the ``F x D`` key bits and the ``L x D`` level bits (the paper's
  abstract names hypervector design; which hypervectors it optimizes we could not check);
* the level structure is kept *by construction*: every dimension's level bits flip exactly
  once from level 0 to level ``L - 1`` (``torchhd.embeddings.Level`` flips each bit at most
  once), at a per-dimension level ``t_d`` that is optimized, so the similarity of two level
  hypervectors never rises as their levels move apart;
* the objective: the cross-entropy of the Hamming similarities between the encoded
  training samples and binary class hypervectors trained jointly (pulls a class's samples
  together and pushes other classes away); the robustness-to-noise objective and the
  Pareto front are NOT implemented;
* the optimizer: Adam on latent real values, the bits taken by sign with a
  straight-through estimator (as for :class:`~.lowdim.LearnedEncoder`), starting from the
  random torchhd draws (``torchhd.embeddings.Random`` keys, ``torchhd.embeddings.Level``
  levels, a ``torchhd.functional.random`` tie-break).

Why it can work at small ``D``: with level bits that flip once at ``t_d``, dimension ``d``
of the encoded sample is ``sign(sum_j k_jd * s_d(q_j >= t_d) + tb_d)`` (bipolar), a +-1
weighted vote over the inputs thresholded at a per-dimension level: a binary-weight
threshold unit, which is what the random item memory is too -- with weights that do not
depend on the task. A random ``Level`` draw also leaves about half of the dimensions without a
flip (its first and last levels are independent), and such a dimension encodes every input
alike: one reason the random ID-level encoder is so weak at small ``D``.
"""

from __future__ import annotations

import math

import torch

from nonvon.errors import ConfigError
from nonvon.simulators.hdc.encoders import IDLevelEncoder
from nonvon.simulators.hdc.lowdim import _SignSTE

__all__ = ["DesignedIDLevelEncoder", "level_flips"]


def level_flips(level_bits: torch.Tensor) -> torch.Tensor:
    """Per dimension, how often the bit changes between consecutive levels (``(L, D)`` -> ``(D,)``)."""
    lv = torch.as_tensor(level_bits).to(torch.int8)
    return (lv[1:] != lv[:-1]).sum(0)


class DesignedIDLevelEncoder(IDLevelEncoder):
    """ID-level encoding whose key and level hypervectors are optimized on the task.

    Args:
        n_features: input length ``F``.
        dimensions: hypervector length ``D``.
        levels: input quantization levels ``L`` (>= 2).
        seed: seeds the torchhd draws the design starts from (and the training order).
    """

    def __init__(self, n_features: int, dimensions: int, *, levels: int = 4, seed: int = 0):
        self.seed = seed
        super().__init__(n_features, dimensions, levels=levels, seed=seed)
        self.head_bits: torch.Tensor | None = None

    # -- design -----------------------------------------------------------------------------
    def _start(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent keys and per-dimension flip levels reproducing the torchhd draws.

        A dimension whose level bits go 1 -> 0 is mirrored (its key column and level column
        negated: every XOR product is unchanged), so all level columns rise -1 -> +1 in
        bipolar form.
        """
        k = 1.0 - 2.0 * self._keys.to(torch.float32)  # bipolar keys (F, D), bit 1 = -1
        lv = 1.0 - 2.0 * self._lv.to(torch.float32)  # (L, D)
        mirror = lv[0] > 0
        k[:, mirror] *= -1
        lv[:, mirror] *= -1
        # first level at +1 (L when the column stays at -1)
        up = (lv > 0).to(torch.float32)
        # a column that never flips makes its dimension constant (every input binds the same
        # level bit) and gives it no gradient: such a dimension -- about half of them in a
        # torchhd Level draw, whose first and last levels are independent -- starts at a
        # seeded random flip level instead
        g = torch.Generator().manual_seed(int(self.seed) + 3)
        spare = torch.randint(1, self.levels, (self.dimensions,), generator=g).to(torch.float32)
        first = torch.where(up.any(0), up.argmax(0).to(torch.float32), spare)
        return 0.5 * k, first - 0.5  # flip between levels first-1 and first

    def _levels_from(self, t: torch.Tensor) -> torch.Tensor:
        """Bipolar level hypervectors ``(L, D)``: -1 below ``t_d``, +1 from it (straight through)."""
        grid = torch.arange(self.levels, dtype=torch.float32).view(-1, 1)
        return _SignSTE.apply((grid - t) * (2.0 / self.levels))

    def fit_design(self, xq: torch.Tensor, y: torch.Tensor, n_classes: int, *, epochs: int,
                   lr: float, batch_size: int, seed: int) -> DesignedIDLevelEncoder:
        """Optimize the key and level hypervectors on quantized inputs ``xq`` with labels ``y``."""
        if len(xq) < 2:
            raise ConfigError(f"the design needs at least 2 training samples, got {len(xq)}",
                              "train on a task with more samples")
        g = torch.Generator().manual_seed(int(seed))
        k0, t0 = self._start()
        a_k = torch.nn.Parameter(k0)
        t = torch.nn.Parameter(t0)
        head = torch.nn.Parameter(torch.randn(self.dimensions, n_classes, generator=g) * 0.1)
        temp = torch.nn.Parameter(torch.tensor(math.log(10.0 / math.sqrt(self.dimensions))))
        tb = 1.0 - 2.0 * self._tb.to(torch.float32)  # (D,) bipolar tie-break
        scale = math.sqrt(self.n_features + 1)  # spread of a random vote: the STE's window
        opt = torch.optim.Adam([a_k, t, head, temp], lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
        n = len(xq)
        loss = torch.tensor(float("nan"))
        for _ in range(epochs):
            order = torch.randperm(n, generator=g)
            for i in range(0, n, batch_size):
                idx = order[i:i + batch_size]
                loss = torch.nn.functional.cross_entropy(
                    self._logits(xq[idx], a_k, t, tb, scale, head, temp), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():  # every dimension flips once, between levels 0 and L - 1
                    t.clamp_(0.5, self.levels - 1.5)
            sched.step()
        with torch.no_grad():
            k = _SignSTE.apply(a_k)
            lv = self._levels_from(t)
        self._set_item_memory((k < 0).to(torch.uint8), (lv < 0).to(torch.uint8))
        self.head_bits = (head.detach() >= 0).T.contiguous()  # (C, D), bit 1 = +1
        self.train_loss = float(loss.detach())
        return self

    def _logits(self, q, a_k, t, tb, scale, head, temp):
        k = _SignSTE.apply(a_k)  # (F, D)
        lv = self._levels_from(t)  # (L, D), rising
        # sum_j k_jd lv[q_j]_d = lv[0]_d sum_j k_jd + sum_{l >= 1} (lv[l] - lv[l-1])_d sum_{q_j >= l} k_jd
        s = k.sum(0) * lv[0] + tb
        for level in range(1, self.levels):
            s = s + ((q >= level).to(torch.float32) @ k) * (lv[level] - lv[level - 1])
        h = _SignSTE.apply(-s / scale)  # bit 1 (= +1 here) when the XOR count is a majority
        return h @ _SignSTE.apply(head) * temp.exp()

    def _set_item_memory(self, key_bits: torch.Tensor, level_bits: torch.Tensor) -> None:
        """Install key and level bits and rebuild the encoder's pattern groups."""
        self._keys = key_bits.to(torch.uint8).contiguous()
        self._lv = level_bits.to(torch.uint8).contiguous()
        self._build_groups()

    # -- state ------------------------------------------------------------------------------
    def state(self) -> dict[str, torch.Tensor]:
        """The designed key and level bits and the (seeded, random) tie-break bits."""
        return {"encoder.keys": self._keys.contiguous(), "encoder.levels": self._lv.contiguous(),
                "encoder.tiebreak": self._tb.contiguous()}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        missing = [k for k in ("encoder.keys", "encoder.levels", "encoder.tiebreak") if k not in tensors]
        if missing:
            raise ConfigError(f"designed-encoder state is missing tensors {missing}",
                              "pass what state_tensors() returned for this simulator")
        keys = torch.as_tensor(tensors["encoder.keys"])
        lv = torch.as_tensor(tensors["encoder.levels"])
        want = [(self.n_features, self.dimensions), (self.levels, self.dimensions)]
        got = [tuple(keys.shape), tuple(lv.shape)]
        if got != want:
            raise ConfigError(f"designed-encoder item memory has shapes {got}; this config needs {want}",
                              "load the state with the config and task it was fitted with")
        self._tb = torch.as_tensor(tensors["encoder.tiebreak"]).to(torch.int32).reshape(self.dimensions)
        self._set_item_memory(keys, lv)
