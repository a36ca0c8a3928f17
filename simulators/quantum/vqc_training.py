"""Classical pre-processing and the training loop shared by the VQC and its classical twin.

Both models see the same inputs (:class:`Preprocessor`: downsampling or PCA, then
scaling to angles) and are trained the same way (:func:`train_adam`: minibatch Adam on
the cross-entropy, jit-compiled with JAX), so the comparison isolates the model.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import Counter

import numpy as np

from nonvon.errors import ConfigError, IncompatibleError

__all__ = ["Preprocessor", "train_adam", "cross_entropy", "hinge", "LOSSES"]


@dataclasses.dataclass
class Preprocessor:
    """Reduce images or vectors to ``n_features`` and scale them to rotation angles.

    Args:
        mode: ``"pca"`` (principal components of the train split), ``"downsample"``
            (area-average images to ``side x side``, ``side**2 = n_features``) or
            ``"none"`` (features as given).
        n_features: features after reduction (``None`` with ``"none"``: all).
        scale: ``"angle"`` maps each feature to ``[0, pi]`` by its train-split min and max
            (test values clipped); ``"none"`` leaves them (amplitude encoding normalizes).
    """

    mode: str
    n_features: int | None
    scale: str = "angle"

    def fit(self, x: np.ndarray) -> Preprocessor:
        if self.mode not in ("pca", "downsample", "none"):
            raise ConfigError(f"unknown preprocess {self.mode!r}", "use 'pca', 'downsample' or 'none'")
        self.input_shape = x.shape[1:]
        flat = x.reshape(len(x), -1).astype(np.float64)
        if self.mode == "pca":
            if self.n_features > flat.shape[1]:
                raise IncompatibleError(f"pca to {self.n_features} features needs at least that many "
                                        f"inputs; the task has {flat.shape[1]}",
                                        f"use n_features <= {flat.shape[1]}")
            from sklearn.decomposition import PCA

            p = PCA(n_components=self.n_features, random_state=0).fit(flat)
            self.mean, self.components = p.mean_, p.components_
        elif self.mode == "downsample":
            side = math.isqrt(self.n_features)
            if x.ndim != 3:
                raise IncompatibleError("preprocess='downsample' needs images; the task has vectors",
                                        "use preprocess='pca' or 'none'")
            if side * side != self.n_features or side > min(x.shape[1:]):
                raise ConfigError(f"downsample to n_features={self.n_features} needs a square number "
                                  f"of at most {min(x.shape[1:]) ** 2}", "e.g. n_features=16 (4x4)")
            self.side = side
        feats = self._reduce(x, Counter())
        self.lo, self.hi = feats.min(axis=0), feats.max(axis=0)
        self.n_out = feats.shape[1]
        return self

    # -- trained state: what fit learned from the train split, as named arrays ----------------
    def state_tensors(self) -> dict[str, np.ndarray]:
        """The fitted statistics (train-split range, and for ``"pca"`` mean and components)."""
        out = {"lo": np.asarray(self.lo), "hi": np.asarray(self.hi)}
        if self.mode == "pca":
            out |= {"mean": np.asarray(self.mean), "components": np.asarray(self.components)}
        return {k: v.copy() for k, v in out.items()}

    def load_state_tensors(self, tensors: dict, input_shape: tuple[int, ...]) -> Preprocessor:
        """Restore :meth:`state_tensors` for inputs of ``input_shape`` (no refit)."""
        need = {"lo", "hi"} | ({"mean", "components"} if self.mode == "pca" else set())
        missing = sorted(need - set(tensors))
        if missing:
            raise ConfigError(f"the pre-processing state lacks {missing} (mode {self.mode!r})",
                              "load the state saved by a simulator with the same preprocess setting")
        arr = {k: np.asarray(tensors[k], dtype=np.float64) for k in need}
        self.input_shape = tuple(input_shape)
        if self.mode == "pca":
            self.mean, self.components = arr["mean"], arr["components"]
            if self.components.shape != (self.n_features, math.prod(self.input_shape)):
                raise ConfigError(f"stored PCA components {self.components.shape} do not match "
                                  f"{self.n_features} features of inputs {self.input_shape}",
                                  "load the state saved for this task and n_features")
        elif self.mode == "downsample":
            self.side = math.isqrt(self.n_features)
        self.lo, self.hi = arr["lo"], arr["hi"]
        self.n_out = len(self.lo)
        return self

    def _reduce(self, x: np.ndarray, counts: Counter) -> np.ndarray:
        n = len(x)
        flat = x.reshape(n, -1).astype(np.float64)
        if self.mode == "pca":
            d, k = self.components.shape[1], self.components.shape[0]
            counts["add_fp32"] += n * d          # centre
            counts["mac_fp32"] += n * d * k      # project
            return (flat - self.mean) @ self.components.T
        if self.mode == "downsample":
            import torch
            import torch.nn.functional as F

            counts["add_fp32"] += n * flat.shape[1]   # every pixel summed into its cell
            counts["mul_fp32"] += n * self.side ** 2  # one divide (by the cell area) per cell
            t = torch.from_numpy(np.asarray(x, dtype=np.float32)).unsqueeze(1)
            return F.adaptive_avg_pool2d(t, self.side).squeeze(1).reshape(n, -1).numpy().astype(np.float64)
        return flat

    def transform(self, x: np.ndarray, counts: Counter | None = None) -> np.ndarray:
        """Features ``(N, n_out)`` (angles in ``[0, pi]`` with ``scale='angle'``), counting ops."""
        counts = Counter() if counts is None else counts
        if x.shape[1:] != self.input_shape:
            raise IncompatibleError(f"inputs of shape {x.shape[1:]}; fitted on {self.input_shape}")
        f = self._reduce(x, counts)
        if self.scale == "none":
            return f
        n, k = f.shape
        counts["add_fp32"] += n * k
        counts["mul_fp32"] += n * k
        counts["cmp_fp32"] += 2 * n * k  # clip to the train range
        span = np.where(self.hi > self.lo, self.hi - self.lo, 1.0)
        return np.pi * np.clip((f - self.lo) / span, 0.0, 1.0)


def cross_entropy(logits, y):
    """Mean softmax cross-entropy of integer labels."""
    import jax
    import jax.numpy as jnp

    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def hinge(logits, y):
    """Mean hinge loss ``max(0, 1 - t s)`` of a two-class score ``s = logits[:, 1] - logits[:, 0]``.

    ``t = +1`` for label 1 and ``-1`` for label 0: the loss the TensorFlow Quantum MNIST
    tutorial trains its readout expectation with (``tf.keras.losses.Hinge``).
    """
    import jax.numpy as jnp

    score = logits[:, 1] - logits[:, 0]
    t = 2.0 * y.astype(jnp.float32) - 1.0
    return jnp.mean(jnp.maximum(0.0, 1.0 - t * score))


LOSSES = {"cross_entropy": cross_entropy, "hinge": hinge}


def train_adam(logits_fn, params: dict, x: np.ndarray, y: np.ndarray, *, epochs: int,
               batch_size: int, lr: float, seed: int, progress: bool = False, label: str = "train",
               lr_floor: float = 0.1, history: list | None = None, loss: str = "cross_entropy") -> dict:
    """Minibatch Adam on ``loss`` (a key of :data:`LOSSES`) of ``logits_fn(params, x_batch)``.

    The step (forward, exact gradient by reverse-mode autodiff, Adam update; Kingma &
    Ba, ICLR 2015, with beta1 0.9, beta2 0.999, eps 1e-8) is one ``jax.jit`` function.
    The learning rate decays by a cosine from ``lr`` to ``lr * lr_floor``. Each epoch
    visits the train split in a fresh permutation (from ``seed``) in full batches.

    Returns:
        The trained parameters (NumPy arrays). If ``history`` is a list, the mean loss
        of each epoch is appended to it.
    """
    import jax.numpy as jnp

    from nonvon.progress import progress_bar

    if loss not in LOSSES:
        raise ConfigError(f"unknown loss {loss!r}", f"use one of {sorted(LOSSES)}")
    n = len(x)
    bs = min(batch_size, n)
    per_epoch = n // bs
    total = max(1, epochs * per_epoch)
    p = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in params.items()}
    m = {k: jnp.zeros_like(v) for k, v in p.items()}
    v = {k: jnp.zeros_like(v) for k, v in p.items()}
    step = _adam_step(logits_fn, loss)
    hyper = (jnp.float32(lr), jnp.float32(lr_floor), jnp.float32(total))

    rng = np.random.default_rng(seed)
    xj, yj = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int32)
    t = 0
    with progress_bar(progress) as bar:
        job = bar.add_task(label, total=total, status="")
        for _ in range(epochs):
            order = rng.permutation(n)
            losses = []
            for i in range(per_epoch):
                idx = order[i * bs:(i + 1) * bs]
                p, m, v, val = step(p, m, v, jnp.float32(t), hyper, xj[idx], yj[idx])
                losses.append(val)
                t += 1
                bar.advance(job)
            mean = float(jnp.mean(jnp.stack(losses)))
            if not math.isfinite(mean):
                raise FloatingPointError(f"{label}: the loss became {mean}; lower the learning rate")
            bar.update(job, status=f"loss {mean:.4f}")
            if history is not None:
                history.append(mean)
    return {k: np.asarray(val) for k, val in p.items()}


@functools.lru_cache(maxsize=32)
def _adam_step(logits_fn, loss_name: str = "cross_entropy"):
    """One jit-compiled Adam step for ``logits_fn``, cached so that refits reuse the compile.

    Hyper-parameters are arguments, not constants, for the same reason.
    """
    import jax
    import jax.numpy as jnp

    b1, b2, eps = 0.9, 0.999, 1e-8

    loss_fn = LOSSES[loss_name]

    def loss(p, xb, yb):
        return loss_fn(logits_fn(p, xb), yb)

    @jax.jit
    def step(p, m, v, t, hyper, xb, yb):
        lr, floor, total = hyper
        val, g = jax.value_and_grad(loss)(p, xb, yb)
        rate = lr * (floor + (1 - floor) * 0.5 * (1 + jnp.cos(jnp.pi * t / total)))
        t1 = t + 1.0
        m = jax.tree.map(lambda a, b: b1 * a + (1 - b1) * b, m, g)
        v = jax.tree.map(lambda a, b: b2 * a + (1 - b2) * b * b, v, g)
        p = jax.tree.map(
            lambda w, a, b: w - rate * (a / (1 - b1 ** t1)) / (jnp.sqrt(b / (1 - b2 ** t1)) + eps), p, m, v)
        return p, m, v, val

    return step
