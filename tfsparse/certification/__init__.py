"""Certified robustness: bounds that hold for every input in the ball, not an attack that failed.

``tfsparse.certify(model, x, y, eps, method="crown")`` proves, per image, that no perturbation
with ``‖δ‖ ≤ ε`` (l∞ or l2, images kept in [0, 1]) changes the predicted class, by bounding
the margin of the true class over every other class from below (:mod:`.bounds`: IBP, CROWN,
CROWN-IBP). A certified image is robust for certain; an uncertified one may be robust too
(the bound is loose), so certified accuracy ≤ any attack's robust accuracy ≤ clean accuracy.

:mod:`.smoothing` certifies the smoothed classifier of randomized smoothing instead (Cohen et
al. 2019): an l2 radius per image from Monte-Carlo votes, with a Clopper–Pearson bound.

Works on plain, pruned-wrapped and stripped tf_keras models of the layers :mod:`.graph`
lists (Dense, Conv2D, DepthwiseConv2D, BatchNormalization at inference, ReLU, Flatten,
pooling, Add, the input normalisation); a model with anything else is refused by name.
"""

import dataclasses
import weakref

import numpy as np

from tfsparse.certification.bounds import METHODS
from tfsparse.certification.bounds import NORMS
from tfsparse.certification.bounds import check_method
from tfsparse.certification.bounds import margin_spec
from tfsparse.certification.bounds import spec_bounds
from tfsparse.certification.graph import model_graph
from tfsparse.compat import tf
from tfsparse.errors import ConfigError

__all__ = ["METHODS", "NORMS", "Certificate", "Certified", "Certifier", "certify", "output_bounds"]


@dataclasses.dataclass
class Certified:
    """Per-image results of :func:`certify`: ``certified`` (bool), ``margins`` (lower bounds, (n, K − 1))."""

    certified: np.ndarray
    margins: np.ndarray
    method: str
    norm: str
    eps: float

    @property
    def accuracy(self):
        """Certified accuracy: the fraction of images whose every margin is provably positive."""
        return float(np.mean(self.certified)) if len(self.certified) else float("nan")


@dataclasses.dataclass(frozen=True)
class Certificate:
    """A certified measure beside the attacks of an evaluation: ``method`` at radius ``eps`` in ``norm``.

    ``tfsparse.evaluation.evaluate(..., certificates=[Certificate("crown", 0.1)])`` reports its
    certified accuracy as ``certified_crown`` and checks it per image against the clean
    prediction and every attack of the same norm and no larger ε.
    """

    method: str
    eps: float
    norm: str = "linf"

    def __post_init__(self):
        check_method(self.method, self.norm)
        if not np.isfinite(self.eps) or not 0 <= self.eps <= 1:
            raise ConfigError(f"certify: eps must be in [0, 1] (pixel units of [0, 1] images), got {self.eps}")

    @property
    def name(self):
        return f"certified_{self.method}"

    def run(self, model, x, y, batch_size=100):
        """:func:`certify` of ``model`` on ``(x, y)`` with this method, radius and norm."""
        return certify(model, x, y, self.eps, self.method, self.norm, batch_size)


class Certifier:
    """Bounds of one model, traced once per method and norm (one ``tf.function`` per batch shape)."""

    def __init__(self, model):
        self.nodes = model_graph(model)
        self.num_outputs = int(np.prod(self.nodes[-1].shape))
        # method and norm are Python strings: one trace per pair (and per batch shape); the
        # graph walk is Python at trace time, so there is no control flow for AutoGraph.
        self._bounds = tf.function(lambda x, spec, eps, method, norm: spec_bounds(self.nodes, x, spec, eps, method,
                                                                                 norm),
                                   reduce_retracing=True, autograph=False)

    def spec_bounds(self, x, spec, eps, method="crown", norm="linf"):
        """Lower and upper bounds of ``spec · f(x')``, (batch, specs) each; see :mod:`.bounds`."""
        check_method(method, norm)
        return self._bounds(tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(spec, tf.float32),
                            tf.constant(float(eps), tf.float32), method, norm)

    def certify(self, x, y, eps, method="crown", norm="linf", batch_size=100):
        """:func:`certify` with this model's traced bounds."""
        x, y = np.asarray(x, np.float32), np.asarray(y).astype(np.int64).reshape(-1)
        _check(x, y, eps, self.num_outputs, batch_size)
        margins = []
        for start in range(0, len(x), batch_size):
            spec = margin_spec(y[start:start + batch_size], self.num_outputs)
            low, _ = self.spec_bounds(x[start:start + batch_size], spec, eps, method, norm)
            margins.append(low.numpy())
        margins = np.concatenate(margins) if margins else np.zeros((0, self.num_outputs - 1), np.float32)
        return Certified(np.all(margins > 0, axis=1), margins, method, norm, float(eps))


def certify(model, x, y, eps, method="crown", norm="linf", batch_size=100):
    """Proves robustness per image: True where no ``‖δ‖ ≤ eps`` changes the class ``y``.

    Args:
      model: a tf_keras model returning logits (plain, pruned-wrapped or stripped).
      x: images in [0, 1], (n, H, W, C) as the model takes them.
      y: integer labels, (n,).
      eps: the radius, in pixel units of [0, 1] images.
      method: ``"ibp"``, ``"crown"`` or ``"crown_ibp"`` (see :mod:`tfsparse.certification.bounds`).
      norm: ``"linf"`` or ``"l2"``.
      batch_size: images per bound computation (CROWN's memory grows with it).

    Returns:
      :class:`Certified` (``.certified``, ``.margins``, ``.accuracy``).

    Raises:
      tfsparse.errors.ConfigError: a layer without a bound rule (named), a bad ``eps``,
        ``method`` or ``norm``, images outside [0, 1], or labels outside the outputs.
    """
    return _certifier(model).certify(x, y, eps, method, norm, batch_size)


def output_bounds(model, x, eps, method="crown", norm="linf"):
    """Lower and upper bounds of every logit over the input set of each image: (n, K) each."""
    certifier = _certifier(model)
    x = np.asarray(x, np.float32)
    _check(x, None, eps, certifier.num_outputs, 1)
    spec = np.broadcast_to(np.eye(certifier.num_outputs, dtype=np.float32), (len(x),) + (certifier.num_outputs,) * 2)
    low, high = certifier.spec_bounds(x, spec, eps, method, norm)
    return low.numpy(), high.numpy()


_CERTIFIERS = weakref.WeakKeyDictionary()


def _certifier(model):
    """The model's :class:`Certifier`, traced once per model (weights and masks are read at each call)."""
    if model not in _CERTIFIERS:
        _CERTIFIERS[model] = Certifier(model)
    return _CERTIFIERS[model]


def _check(x, y, eps, num_outputs, batch_size):
    if not np.isfinite(eps) or not 0 <= eps <= 1:
        raise ConfigError(f"certify: eps must be in [0, 1] (pixel units of [0, 1] images), got {eps}")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ConfigError(f"certify: images must lie in [0, 1], got [{x.min():.4g}, {x.max():.4g}]; divide 0-255 "
                          f"images by 255")
    if y is not None:
        if len(y) != len(x):
            raise ConfigError(f"certify: {len(x)} images but {len(y)} labels")
        if len(y) and (y.min() < 0 or y.max() >= num_outputs):
            raise ConfigError(f"certify: labels must lie in [0, {num_outputs - 1}] (the model's outputs), got "
                              f"[{y.min()}, {y.max()}]")
        if num_outputs < 2:
            raise ConfigError("certify: the model has one output; margins need a logit per class")
    if int(batch_size) < 1:
        raise ConfigError(f"certify: batch_size must be >= 1, got {batch_size}")
