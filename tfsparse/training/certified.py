"""Certified training: IBP (Gowal et al. 2018) and CROWN-IBP (Zhang et al. 2020) (issue 34, item 3).

:class:`CertifiedModel` wraps a functional ``inner`` model like
:class:`~tfsparse.training.AdversarialModel` (tfmot's pruning wrappers inside keep working,
and the bound reads each kernel through its mask, so pruning and certified training
compose) and trains it on the loss of Zhang et al. 2020, Eq. 7:

    L = κ · CE(f(x), y) + (1 − κ) · CE(−m̲(x, ε), y),
    m̲ = β · m̲_CROWN-IBP + (1 − β) · m̲_IBP,

where ``m̲`` are lower bounds of the margins ``f_y − f_j`` over the ε-ball
(:mod:`tfsparse.certification.bounds`) and ``−m̲`` (with 0 for the true class) are the
worst-case logits: ``CE(−m̲, y) = log(1 + Σ_j exp(−m̲_j))``, which is 0 only where every
margin is provably positive. With β = 0 (``method="ibp"``) this is Gowal et al.'s Eq. 12.

Schedules (both papers, §4 / Appendix): ε ramps linearly from 0 to ``eps`` over
``ramp_steps`` optimizer steps after ``warmup_steps`` steps of clean training (ε = 0);
κ goes linearly from ``kappa[0]`` to ``kappa[1]`` and β from ``beta[0]`` to ``beta[1]``
over the same ramp (the papers: κ 1 → 0 for CROWN-IBP, 1 → 0.5 for IBP; β 1 → 0).

The bound runs batch normalisation with its moving statistics (inference mode), as the
certificate does; the clean term trains in training mode. The logged ``certified`` metric
is the fraction of the batch whose bound at the step's ε proves every margin positive.
"""

from tfsparse.certification import Certifier
from tfsparse.certification.bounds import margin_spec
from tfsparse.certification.bounds import spec_bounds
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.sparsity.prune import ModelWrapper
from tfsparse.training.wrapped import InnerModelWrapper

METHODS = ("ibp", "crown_ibp")


@ModelWrapper.register
@keras.utils.register_keras_serializable(package="tfsparse")
class CertifiedModel(InnerModelWrapper):
    """A Keras model that trains its functional ``inner`` model on a certified (bound) loss.

    Example:

    >>> model = CertifiedModel(inner, eps=0.1, method="crown_ibp", warmup_steps=200, ramp_steps=2000)
    >>> model.compile(keras.optimizers.Adam(5e-4),
    ...               keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    >>> model.fit(x, y, epochs=20)

    Args:
      inner: functional tf_keras model returning logits, of the layers
        :mod:`tfsparse.certification.graph` supports (pruning wrappers allowed).
      eps: the training radius (pixel units), ≥ 0.
      method: ``"ibp"`` or ``"crown_ibp"``.
      norm: ``"linf"`` or ``"l2"``.
      warmup_steps: optimizer steps of clean training before ε starts to grow.
      ramp_steps: optimizer steps over which ε, κ and β move to their final values
        (0: at once).
      kappa: (start, end) weight of the clean cross-entropy.
      beta: (start, end) weight of CROWN-IBP's bound against IBP's (unused for ``ibp``).
    """

    def __init__(self, inner, *, eps, method="crown_ibp", norm="linf", warmup_steps=0, ramp_steps=0,
                 kappa=(1.0, 0.0), beta=(1.0, 0.0), **kwargs):
        super().__init__(inner, **kwargs)
        if method not in METHODS:
            raise ValueError(f"CertifiedModel: method must be one of {METHODS}, got {method!r}")
        if not 0 <= float(eps) <= 1:
            raise ValueError(f"CertifiedModel: eps must be in [0, 1] (pixel units), got {eps!r}")
        for name, value in (("warmup_steps", warmup_steps), ("ramp_steps", ramp_steps)):
            if not (isinstance(value, int) and value >= 0):
                raise ValueError(f"CertifiedModel: {name} must be an integer >= 0, got {value!r}")
        for name, pair in (("kappa", kappa), ("beta", beta)):
            if len(pair) != 2 or not all(0 <= float(v) <= 1 for v in pair):
                raise ValueError(f"CertifiedModel: {name} must be (start, end) in [0, 1], got {pair!r}")
        self.certifier = Certifier(inner)
        self.eps, self.method, self.norm = float(eps), method, norm
        self.warmup_steps, self.ramp_steps = int(warmup_steps), int(ramp_steps)
        self.kappa, self.beta = tuple(float(v) for v in kappa), tuple(float(v) for v in beta)
        self.num_classes = int(inner.output_shape[-1])
        self.certified = keras.metrics.Mean(name="certified")

    def schedule(self):
        """(ε, κ, β) of the current optimizer step (see the module docstring)."""
        step = tf.cast(self.optimizer.iterations, tf.float32) - float(self.warmup_steps)
        ramp = tf.clip_by_value(step / float(max(self.ramp_steps, 1)), 0.0, 1.0)
        if self.ramp_steps == 0:
            ramp = tf.cast(step >= 0, tf.float32)

        def between(pair):
            return pair[0] + (pair[1] - pair[0]) * ramp

        return self.eps * ramp, between(self.kappa), between(self.beta) if self.method == "crown_ibp" else 0.0

    def margin_lower_bounds(self, x, y, eps, beta):
        """β · CROWN-IBP + (1 − β) · IBP lower bounds of the margins, (batch, K − 1)."""
        spec = margin_spec(tf.reshape(y, [-1]), self.num_classes)
        nodes = self.certifier.nodes
        low, _ = spec_bounds(nodes, x, spec, eps, "ibp", self.norm)
        if self.method == "crown_ibp":
            crown, _ = spec_bounds(nodes, x, spec, eps, "crown_ibp", self.norm)
            low = beta * crown + (1.0 - beta) * low
        return low

    def _objective(self, x, y, sample_weight, logits, eps, kappa, beta):
        clean = self.compute_loss(x, y, logits, sample_weight)
        low = self.margin_lower_bounds(x, y, eps, beta)
        worst = tf.reduce_logsumexp(tf.concat([tf.zeros_like(low[:, :1]), -low], 1), axis=1)  # CE(−m̲, y)
        robust = tf.reduce_mean(worst if sample_weight is None else worst * tf.cast(sample_weight, worst.dtype))
        self.certified.update_state(tf.cast(tf.reduce_all(low > 0, axis=1), tf.float32), sample_weight)
        return kappa * clean + (1.0 - kappa) * robust

    def train_step(self, data):
        """One step on Zhang et al.'s Eq. 7 at the scheduled (ε, κ, β)."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x = tf.cast(x, tf.float32)
        eps, kappa, beta = self.schedule()
        self.compiled_metrics.update_state(y, self.inner(x, training=False), sample_weight)
        with tf.GradientTape() as tape:
            logits = self.inner(x, training=True)
            loss = self._objective(x, y, sample_weight, logits, eps, kappa, beta)
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        return self.get_metrics_result()

    def test_step(self, data):
        """Clean metrics and the bound's certified fraction at the full ε (κ, β at their ends)."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x = tf.cast(x, tf.float32)
        logits = self.inner(x, training=False)
        self.compiled_metrics.update_state(y, logits, sample_weight)
        self._objective(x, y, sample_weight, logits, tf.constant(self.eps), self.kappa[1],
                        self.beta[1] if self.method == "crown_ibp" else 0.0)
        return self.get_metrics_result()

    def settings(self):
        """The schedule (``.keras`` files hold it beside ``inner``)."""
        return {"eps": self.eps, "method": self.method, "norm": self.norm, "warmup_steps": self.warmup_steps,
                "ramp_steps": self.ramp_steps, "kappa": list(self.kappa), "beta": list(self.beta)}
