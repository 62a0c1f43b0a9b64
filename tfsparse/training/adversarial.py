"""PGD adversarial training (Madry et al. 2018) and RSR's ensemble training (SPEC §8).

:class:`AdversarialModel` wraps a *functional* model (``inner``) and overrides only
``train_step`` / ``test_step``; the architecture itself stays functional, so tfmot's
pruning wrappers inside it keep working (``prune_low_magnitude``/``strip_pruning``
reject subclassed models, STYLE §4) and :func:`tfsparse.sparsity.strip` / export act on
``inner``.

One optimizer step:

1. ``x_adv = pgd_perturb(lambda z: inner(z, training=False), x, y, ...)``: the whole
   k-step PGD loop in-graph (a ``tf.while_loop`` inside the same ``tf.function``/XLA
   cluster as the step). The attack runs the model in inference mode: batch
   normalisation uses its moving statistics and tfmot's pruning step does not move
   (every ``training=True`` call advances it). CNI/PNI noise is governed by the noise
   layers' own ``inference_noise`` switch, so a recipe that wants the attack to face
   the noise (RSR) turns that switch on (:func:`tfsparse.layers.set_inference_noise`).
2. **One** ``training=True`` forward pass: over ``x_adv`` alone when ``clean_weight`` is
   0 (Madry), else over ``concat([x, x_adv])`` with the per-sample weights of
   :func:`tfsparse.training.losses.ensemble_sample_weights` (RSR eq. 5). BN-statistics
   choice: with the concatenation, batch normalisation normalises with the statistics
   of the joint clean+adversarial batch and its moving averages track that mixture (as
   a single-BN implementation of RSR's ensemble loss does); with ``clean_weight=0`` it
   sees adversarial examples only, as in Madry et al.
3. ``loss = compute_loss(...)`` — the compiled cross-entropy plus ``inner.losses``
   (weight decay, RSR lasso), scaled for ``tf.distribute`` by Keras — then
   ``optimizer.minimize(loss, trainable_variables, tape=tape)``.

Logged metrics: ``loss`` (the training objective, from the training-mode pass), the
compiled metrics on the clean examples (``accuracy``) and ``adv_accuracy`` on the
adversarial ones. Both accuracies are read in inference mode (``training=False``), in
training as in evaluation: one extra forward pass over ``concat([x, x_adv])`` before the
update, with the weights the attack faced, so the two are comparable with each other and
with ``val_*`` and :func:`tfsparse.evaluate` (with ε = 0 they are equal). With batch
normalisation that means BN's moving statistics, which lag the weights early in a run:
``momentum`` 0.99 (Keras' default) averages over ~100 steps, so in the first few hundred
steps both accuracies can sit near chance while ``loss`` (batch statistics) already falls;
a short run wants ``momentum`` ~0.9 or a look at ``loss``. The PGD random
start is seeded from ``(seed, optimizer.iterations)``: the optimizer's step is restored
with a checkpoint (Keras' own train counter restarts at every ``fit``), so a run resumed
from a checkpoint draws the same starts as an uninterrupted one.

Per-dataset ε / step / steps live in the config files (``configs/train.py`` variants).
"""

from tfsparse.attacks import pgd_perturb
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.compat import use_xla
from tfsparse.sparsity import has_pruning_wrappers
from tfsparse.sparsity.prune import ModelWrapper
from tfsparse.training.callbacks import SparsityMonitor
from tfsparse.training.clean import accuracy_metric
from tfsparse.training.clean import add_weight_decay
from tfsparse.training.clean import fit_arrays
from tfsparse.training.clean import loss_for
from tfsparse.training.clean import make_optimizer
from tfsparse.training.clean import steps_for
from tfsparse.training.losses import check_clean_weight
from tfsparse.training.losses import ensemble_sample_weights
from tfsparse.training.wrapped import InnerModelWrapper


@ModelWrapper.register
@keras.utils.register_keras_serializable(package="tfsparse")
class AdversarialModel(InnerModelWrapper):
    """A Keras model that trains its functional ``inner`` model on PGD examples.

    Compile and fit it like any Keras model; ``compile(jit_compile=True)`` puts the
    whole step, attack loop included, in one XLA cluster. Under a
    ``tf.distribute`` strategy build ``inner`` and this wrapper inside
    ``strategy.scope()``.

    Example:

    >>> model = AdversarialModel(inner, eps=0.3, step_size=0.01, steps=40)
    >>> model.compile(keras.optimizers.SGD(0.01),
    ...               keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    ...               metrics=["accuracy"])
    >>> model.fit(x, y, epochs=1, callbacks=[UpdatePruningStep()])  # if inner is pruned

    Metrics: ``loss`` is the training objective of the training-mode pass (batch
    statistics in BN); ``accuracy`` (clean) and ``adv_accuracy`` (on this step's PGD
    examples) are both computed in inference mode, as the attack runs, before the update.
    Early in a run BN's moving statistics lag (module docstring), so the accuracies can
    trail what ``loss`` suggests.

    Saving: ``adv.save("m.keras")`` round-trips (``inner`` with its weights and the
    attack settings; ``keras.models.load_model`` or
    :func:`tfsparse.model_io.load_model` gives an ``AdversarialModel`` back); HDF5 is
    refused (save ``adv.inner`` instead). ``sparsity.strip``/``plain``,
    :func:`tfsparse.export.export` and ``save_saved_model`` take the wrapper and work
    on ``inner``.

    Args:
      inner: functional ``tf_keras`` model returning logits (pruning wrappers and
        CNI layers allowed).
      eps: ε of the training attack (pixel units), ≥ 0.
      step_size: PGD step size, > 0 unless ``steps`` is 0.
      steps: PGD steps (0 trains on the random start, or on clean data without it).
      norm: ``"linf"`` or ``"l2"``.
      random_start: start PGD from a uniform point of the ball (Madry).
      clean_weight: RSR's ``a`` in eq. 5: weight of the clean cross-entropy; 0 =
        Madry's adversarial-only loss, 0.5 = RSR.
      grad_samples: EOT gradient samples per PGD step (for noise that is on in the
        attack).
      adversarial_eval: when True (default), ``evaluate`` and validation also attack
        the inputs and report ``adv_accuracy`` and the same objective as training;
        otherwise they report the clean loss only.
      seed: integer seed of the PGD random starts.
      eps_warmup: optimizer steps over which the training ε ramps linearly from 0 to
        ``eps`` (0 = full ε from the first step). A curriculum of this kind keeps a
        model from sitting at chance when PGD-40 at ε = 0.3 is applied from the first
        step (as happens with LeNet-5 on MNIST); evaluation always uses the full ε.

    Raises:
      ValueError: on a negative ε, a bad step count, ``clean_weight`` outside [0, 1], an
        ``inner`` that is not a Keras model, or an ``inner`` with pruning wrappers created
        under a ``tf.distribute`` strategy (see the message).
    """

    def __init__(
        self, inner, *, eps, step_size, steps, norm="linf", random_start=True,
        clean_weight=0.0, grad_samples=1, adversarial_eval=True, seed=0, eps_warmup=0, **kwargs
    ):
        super().__init__(inner, **kwargs)
        if not float(eps) >= 0:
            raise ValueError(f"AdversarialModel: eps must be >= 0, got {eps!r}")
        if not (isinstance(steps, int) and steps >= 0):
            raise ValueError(f"AdversarialModel: steps must be an integer >= 0, got {steps!r}")
        if steps > 0 and not float(step_size) > 0:
            raise ValueError(f"AdversarialModel: step_size must be > 0, got {step_size!r}")
        if not (isinstance(eps_warmup, int) and eps_warmup >= 0):
            raise ValueError(f"AdversarialModel: eps_warmup must be an integer >= 0, got {eps_warmup!r}")
        if has_pruning_wrappers(inner) and tf.distribute.has_strategy():
            raise ValueError(
                "AdversarialModel: PGD training of a model with tfmot pruning wrappers cannot run under a "
                "tf.distribute strategy (tfmot re-applies its masks with a cross-replica merge_call on every "
                "call, which TensorFlow refuses inside the attack's tf.while_loop); train the dense model "
                "distributed and prune after, or train the pruned model on one device"
            )
        self.eps = float(eps)
        self.step_size = float(step_size)
        self.steps = int(steps)
        self.norm = norm
        self.random_start = bool(random_start)
        self.clean_weight = check_clean_weight(clean_weight)
        self.grad_samples = int(grad_samples)
        self.adversarial_eval = bool(adversarial_eval)
        self.seed = int(seed)
        self.eps_warmup = int(eps_warmup)
        binary = int(inner.output_shape[-1]) == 1
        self.adv_accuracy = (
            keras.metrics.BinaryAccuracy(threshold=0.0, name="adv_accuracy")
            if binary
            else keras.metrics.SparseCategoricalAccuracy(name="adv_accuracy")
        )

    def training_eps(self):
        """The ε of the current optimizer step: ``eps · min(1, (t + 1) / eps_warmup)``."""
        if self.eps_warmup == 0:
            return tf.constant(self.eps, tf.float32)
        ramp = tf.cast(self.optimizer.iterations + 1, tf.float32) / float(self.eps_warmup)
        return self.eps * tf.minimum(1.0, ramp)

    def perturb(self, x, y, counter, eps=None):
        """PGD examples for ``(x, y)`` with the inner model in inference mode.

        Args:
          x: ``(B, ...)`` images in [0, 1].
          y: labels, ``(B,)`` or ``(B, 1)``.
          counter: int64 step counter mixed into the random-start seed.
          eps: radius (default: the full ``eps``).

        Returns:
          ``x_adv`` in the ε-ball around ``x`` and in [0, 1].
        """
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(counter, tf.int64)])
        return pgd_perturb(
            lambda z: self.inner(z, training=False),
            x,
            tf.reshape(tf.cast(y, tf.int32), [-1]),
            eps=self.eps if eps is None else eps,
            step_size=self.step_size,
            steps=self.steps,
            norm=self.norm,
            random_start=self.random_start,
            seed=seed,
            grad_samples=self.grad_samples,
        )

    def _batch(self, x, y, sample_weight, x_adv):
        # The inputs of the single training-mode pass and their loss weights (eq. 5).
        if self.clean_weight == 0.0:
            return x_adv, y, sample_weight
        if sample_weight is None:
            sample_weight = tf.ones([tf.shape(x)[0]], tf.float32)
        weights = ensemble_sample_weights(sample_weight, self.clean_weight)
        return tf.concat([x, x_adv], 0), tf.concat([y, y], 0), weights

    def _inference_logits(self, x, x_adv):
        # Clean and adversarial logits in inference mode, as the attack saw the model: one
        # pass over both halves (BN's moving statistics do not depend on the batch).
        logits = self.inner(tf.concat([x, x_adv], 0), training=False)
        batch = tf.shape(x)[0]
        return logits[:batch], logits[batch:]

    def _update_metrics(self, y, sample_weight, clean_logits, adv_logits):
        self.compiled_metrics.update_state(y, clean_logits, sample_weight)
        self.adv_accuracy.update_state(y, adv_logits, sample_weight)

    def train_step(self, data):
        """PGD examples, one ``training=True`` pass, ``minimize`` (Madry eq. 2.1 / RSR eq. 6).

        The metrics are read before the update, in inference mode, on the weights the
        attack faced (see the class docstring); ``loss`` is the training-mode objective.
        """
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x = tf.cast(x, tf.float32)
        x_adv = tf.stop_gradient(self.perturb(x, y, self.optimizer.iterations, self.training_eps()))
        self._update_metrics(y, sample_weight, *self._inference_logits(x, x_adv))
        x_all, y_all, w_all = self._batch(x, y, sample_weight, x_adv)
        with tf.GradientTape() as tape:
            logits = self.inner(x_all, training=True)
            loss = self.compute_loss(x_all, y_all, logits, w_all)
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        return self.get_metrics_result()

    def test_step(self, data):
        """Clean metrics, plus PGD examples and the training objective if ``adversarial_eval``."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x = tf.cast(x, tf.float32)
        if not self.adversarial_eval:
            clean_logits = self.inner(x, training=False)
            self.compute_loss(x, y, clean_logits, sample_weight)
            self.compiled_metrics.update_state(y, clean_logits, sample_weight)
            return {k: v for k, v in self.get_metrics_result().items() if k != "adv_accuracy"}
        x_adv = self.perturb(x, y, self._test_counter)
        clean_logits, adv_logits = self._inference_logits(x, x_adv)
        x_all, y_all, w_all = self._batch(x, y, sample_weight, x_adv)
        logits = adv_logits if self.clean_weight == 0.0 else tf.concat([clean_logits, adv_logits], 0)
        self.compute_loss(x_all, y_all, logits, w_all)
        self._update_metrics(y, sample_weight, clean_logits, adv_logits)
        return self.get_metrics_result()

    def settings(self):
        """The attack settings (``.keras`` files hold them beside ``inner``)."""
        return {
            "eps": self.eps, "step_size": self.step_size, "steps": self.steps, "norm": self.norm,
            "random_start": self.random_start, "clean_weight": self.clean_weight,
            "grad_samples": self.grad_samples, "adversarial_eval": self.adversarial_eval,
            "seed": self.seed, "eps_warmup": self.eps_warmup,
        }


def compile_adversarial(model, train_cfg, total_steps):
    """Compiles an :class:`AdversarialModel` with the training policy of ``train_cfg``.

    The same optimizer (:func:`tfsparse.training.clean.make_optimizer`), schedule,
    Caffe-style weight decay (prunable kernels of ``inner`` only, never α) and XLA switch
    as clean training
    (:func:`tfsparse.training.clean.compile_model`).

    Args:
      model: the :class:`AdversarialModel`.
      train_cfg: the ``train`` config section.
      total_steps: optimizer steps of the run (sets the LR schedule).
    """
    add_weight_decay(model.inner, train_cfg.weight_decay)
    model.compile(
        optimizer=make_optimizer(train_cfg, total_steps),
        loss=loss_for(model.inner),
        metrics=[accuracy_metric(model.inner)],
        jit_compile=use_xla(train_cfg.jit_compile),
    )


def train_adversarial(model, x, y, train_cfg, *, steps=None, seed=0, verbose=0, callbacks=(),
                      checkpoint_dir=None):
    """Trains an :class:`AdversarialModel` on arrays ``x, y`` for ``steps`` SGD iterations.

    The adversarial counterpart of :func:`tfsparse.training.train`: same pipeline
    (seeded shuffling, optional augmentation), same budget rule, NaN guard, and
    ``UpdatePruningStep`` added automatically when ``inner`` holds pruning wrappers;
    ``SparsityMonitor`` logs ``weight_sparsity`` each epoch.

    Args:
      model: the :class:`AdversarialModel` (uncompiled).
      x, y: training images in [0, 1] and integer labels.
      train_cfg: the ``train`` config section.
      steps: iteration budget; default ``steps_for(train_cfg, len(x))``.
      seed: seed of shuffling and augmentation.
      verbose: Keras progress verbosity.
      callbacks: extra Keras callbacks.
      checkpoint_dir: resumable per-epoch checkpoints (see :func:`fit_arrays`).

    Returns:
      The Keras ``History``.
    """
    steps = steps_for(train_cfg, len(x)) if steps is None else int(steps)
    compile_adversarial(model, train_cfg, steps)
    return fit_arrays(
        model, x, y, train_cfg, steps, seed=seed, verbose=verbose,
        callbacks=[SparsityMonitor(), *callbacks], pruned=model.inner, checkpoint_dir=checkpoint_dir,
    )
