"""Attack base class and result record.

Every attack is a small frozen parameter object (Foolbox 3 ``attacks/base.py``): keyword-only
constructor, ``params`` and a ``repr`` that shows every parameter, used in results files and as
pytest ids. The per-batch work is ONE ``tf.function`` per (attack, model, input shape) that runs
the whole attack loop in-graph, applies the base-class constraints (ε-ball, [0, 1] box) and
computes predictions and norms, so no attack is trusted to clip and nothing returns to NumPy
between steps (SPEC §1, §6).

Two model output kinds are supported (SPEC §3):
  * multi-class logits ``(batch, C)`` with integer labels in ``[0, C)``;
  * binary single logit ``(batch, 1)`` (Guo's ``linear_binary``) with labels in ``{0, 1}``:
    the predicted class is 1 iff the logit is > 0 and the loss is ``softplus(-s·z)``,
    ``s = 2y - 1`` (sigmoid cross-entropy, Guo §3.1).
"""

import abc
import dataclasses
import functools
import numbers
import weakref

import numpy as np

from tfsparse.attacks import lp
from tfsparse.compat import tf
from tfsparse.compat import use_xla


def is_binary(logits) -> bool:
    """True for a single-logit binary output ``(batch, 1)`` (static shape)."""
    return logits.shape[-1] == 1


def labels_from_logits(logits):
    """Predicted labels, int32 ``(batch,)``: argmax, or ``logit > 0`` for a binary output."""
    if is_binary(logits):
        return tf.cast(logits[:, 0] > 0, tf.int32)
    return tf.argmax(logits, axis=-1, output_type=tf.int32)


def loss_per_sample(logits, y):
    """Training loss per sample: softmax cross-entropy, or ``softplus(-s·z)`` for binary."""
    if is_binary(logits):
        sign = 2.0 * tf.cast(y, logits.dtype) - 1.0
        return tf.nn.softplus(-sign * logits[:, 0])
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)


def positive_int(value, name):
    """``value`` as an int, if it is an integer ≥ 1; else ValueError naming ``name`` (constructors)."""
    if not (isinstance(value, numbers.Integral) and value >= 1):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def as_batch(x, y):
    """Checked float32 inputs and int32 ``(batch,)`` labels; ValueError on bad shapes/labels."""
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if x.ndim < 2 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
        raise ValueError(
            "expected non-empty x of shape (batch, ...) and y of shape (batch,), "
            f"got {x.shape} and {y.shape}"
        )
    if not np.all(np.equal(np.mod(y, 1), 0)) or (y.size and y.min() < 0):
        raise ValueError("labels must be non-negative integers (binary models: 0 or 1)")
    return x, y.astype(np.int32)


@dataclasses.dataclass(frozen=True)
class AttackResult:
    """What an attack returns, one entry per sample (NumPy arrays).

    Attributes:
      x_adv: adversarial inputs, same shape as the inputs, inside [0, 1] (and the ε-ball for
        fixed-ε attacks) unless the attack switched the box off.
      success: misclassified after the attack AND correctly classified before; an attack never
        reports success on an input that was already misclassified (SPEC §6).
      clean_correct: the clean prediction equals the label.
      adv_correct: the prediction on ``x_adv`` equals the label (what "accuracy on adversarial
        examples", Guo's r∞, counts).
      l2: ``‖x_adv - x‖₂`` per sample.
      linf: ``‖x_adv - x‖∞`` per sample.
      params: the attack's parameters, including ``name``.
      queries: model evaluations spent per sample by a black-box attack (ZOO); ``None`` for
        white-box attacks.
    """

    x_adv: np.ndarray
    success: np.ndarray
    clean_correct: np.ndarray
    adv_correct: np.ndarray
    l2: np.ndarray
    linf: np.ndarray
    params: dict
    queries: np.ndarray = None

    def with_queries(self, per_sample: int):
        """This result with ``queries`` set to ``per_sample`` for every sample."""
        return dataclasses.replace(self, queries=np.full(self.n, per_sample, np.int64))

    @property
    def n(self) -> int:
        return len(self.success)

    @property
    def clean_accuracy(self) -> float:
        return float(np.mean(self.clean_correct))

    @property
    def adv_accuracy(self) -> float:
        """Accuracy on ``x_adv`` over all samples."""
        return float(np.mean(self.adv_correct))

    @property
    def success_rate(self) -> float:
        """Fraction of clean-correct samples the attack flipped (NaN if none was correct)."""
        attacked = int(np.sum(self.clean_correct))
        return float(np.sum(self.success) / attacked) if attacked else float("nan")

    @property
    def failures(self) -> int:
        """Clean-correct samples the attack did not flip."""
        return int(np.sum(self.clean_correct & ~self.success))

    @classmethod
    def concatenate(cls, results):
        """Joins per-batch results (same attack) along the sample axis."""
        results = list(results)
        fields = [f.name for f in dataclasses.fields(cls) if f.name != "params"]
        joined = {
            name: None
            if any(getattr(r, name) is None for r in results)
            else np.concatenate([getattr(r, name) for r in results])
            for name in fields
        }
        return cls(**joined, params=dict(results[0].params))


class Attack(abc.ABC):
    """Base class of all attacks: frozen keyword-only parameters, one traced core per model.

    Subclasses set ``name``, validate their arguments, pass them to ``super().__init__`` as
    keywords, and implement :meth:`_attack` with TensorFlow ops only (it runs inside the traced
    function). Parameters are readable as attributes (``attack.eps``) and cannot be changed.

    Args:
      jit_compile: ``True``, ``False`` or ``"auto"`` (XLA on GPU, off on CPU; SPEC §1).
      **params: the subclass's parameters, in the order ``repr`` shows them.

    Raises:
      ValueError: if ``jit_compile`` is not ``True``, ``False`` or ``"auto"``.
    """

    name = "attack"

    def __init__(self, *, jit_compile="auto", **params):
        use_xla(jit_compile)
        object.__setattr__(self, "_params", {**params, "jit_compile": jit_compile})
        # Weak keys: caching a traced function must not keep a model alive.
        object.__setattr__(self, "_functions", weakref.WeakKeyDictionary())

    def __getattr__(self, item):
        params = self.__dict__.get("_params", {})
        if item in params:
            return params[item]
        raise AttributeError(f"{type(self).__name__} has no attribute {item!r}")

    def __setattr__(self, key, value):
        raise AttributeError(f"{type(self).__name__} is frozen; build a new attack instead")

    @property
    def params(self) -> dict:
        """Every parameter plus ``name``: ``ATTACKS[p.pop("name")](**p)`` rebuilds the attack."""
        return {"name": self.name, **self._params}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"

    @property
    def clips_to_box(self) -> bool:
        """Whether the base class clips the returned example to [0, 1]."""
        return True

    @property
    def eps_ball(self):
        """``(norm, eps)`` for fixed-budget attacks, whose output the base projects; else None."""
        return None

    @abc.abstractmethod
    def _attack(self, model_fn, x, y, logits, seed):
        """Builds the adversarial batch in-graph.

        Args:
          model_fn: ``x -> logits`` with the model in inference mode.
          x: float32 inputs ``(batch, ...)``.
          y: int32 labels ``(batch,)``.
          logits: ``model_fn(x)``, already computed.
          seed: int64 ``(2,)`` seed for ``tf.random.stateless_*`` ops.

        Returns:
          The adversarial inputs; the base class then projects and clips them.
        """

    # True for an attack whose traced core counts its model queries per sample (Square): it
    # implements _attack_and_queries, and its results carry ``queries``.
    counts_queries = False

    def _attack_and_queries(self, model_fn, x, y, logits, seed):
        """``(x_adv, queries)``: the adversarial batch and the per-sample query counts (int32).

        The default runs :meth:`_attack` and counts nothing (zeros); a query-counting
        attack overrides it and sets :attr:`counts_queries`.
        """
        return self._attack(model_fn, x, y, logits, seed), tf.zeros(tf.shape(y), tf.int32)

    def _constrain(self, x, x_adv):
        if self.eps_ball is not None:
            norm, eps = self.eps_ball
            x_adv = lp.project(x_adv, x, eps, norm)
        if self.clips_to_box:
            x_adv = lp.clip_to_box(x_adv)
        return x_adv

    def graph_function(self, model, input_shape):
        """The cached ``tf.function`` attacking one batch of ``model`` (inputs of ``input_shape``).

        It is traced once per (attack, model, per-sample input shape): the batch axis is ``None``
        in its input signature, so :meth:`run` over many batches does not retrace.

        Args:
          model: a Keras model returning logits.
          input_shape: the shape of one input, without the batch axis.

        Returns:
          ``fn(x, y, seed) -> (x_adv, clean_correct, adv_correct, l2, linf, queries)``.
        """
        input_shape = tuple(int(d) for d in input_shape)
        per_model = self._functions.setdefault(model, {})
        if input_shape not in per_model:
            per_model[input_shape] = self._trace(weakref.ref(model), input_shape)
        return per_model[input_shape]

    def _trace(self, model_ref, input_shape):
        def model_fn(inputs):
            return model_ref()(inputs, training=False)

        def attack_batch(x, y, seed):
            logits = model_fn(x)
            x_adv, queries = self._attack_and_queries(model_fn, x, y, logits, seed)
            x_adv = self._constrain(x, x_adv)
            y_clean = labels_from_logits(logits)
            y_adv = labels_from_logits(model_fn(x_adv))
            delta = x_adv - x
            return (
                x_adv,
                tf.equal(y_clean, y),
                tf.equal(y_adv, y),
                lp.per_sample_norm(delta, "l2"),
                lp.per_sample_norm(delta, "linf"),
                queries,
            )

        signature = [
            tf.TensorSpec((None,) + input_shape, tf.float32),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((2,), tf.int64),
        ]
        # TensorFlow keeps its retracing statistics per Python code object, so every attack's
        # function (one closure's code) counted as one function "retraced" by each new attack
        # or model: five in an evaluation logged "triggered tf.function retracing" although
        # each function is traced once. A partial has no code object of its own, so the
        # statistics are kept per function, as meant (a real retrace of one still warns).
        return tf.function(
            functools.partial(attack_batch), input_signature=signature, jit_compile=use_xla(self.jit_compile)
        )

    def _attack_batch(self, model, x, y, seed_pair):
        fn = self.graph_function(model, x.shape[1:])
        outputs = fn(tf.constant(x), tf.constant(y), tf.constant(seed_pair, tf.int64))
        x_adv, clean_correct, adv_correct, l2, linf, queries = (t.numpy() for t in outputs)
        return AttackResult(
            x_adv=x_adv,
            success=clean_correct & ~adv_correct,
            clean_correct=clean_correct,
            adv_correct=adv_correct,
            l2=l2,
            linf=linf,
            params=self.params,
            queries=queries.astype(np.int64) if self.counts_queries else None,
        )

    def __call__(self, model, x, y, *, seed=None) -> AttackResult:
        """Attacks one batch.

        Args:
          model: Keras model taking [0, 1] float32 inputs and returning logits ``(batch, C)`` or a
            single binary logit ``(batch, 1)``; called with ``training=False``.
          x: inputs ``(batch, ...)``, array or tensor, values in [0, 1].
          y: integer labels ``(batch,)`` (``{0, 1}`` for a binary model).
          seed: integer making random attacks reproducible; ``None`` draws one.

        Returns:
          An :class:`AttackResult`.

        Raises:
          ValueError: on mismatched shapes or non-integer / negative labels.
        """
        x, y = as_batch(x, y)
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31))
        return self._attack_batch(model, x, y, (seed, 0))

    def run(self, model, x, y, *, batch_size=500, seed=0, progress=False) -> AttackResult:
        """Attacks a whole NumPy dataset batch by batch and concatenates the results.

        Batch ``i`` uses the stateless seed ``(seed, i)``, so a run is reproducible; the traced
        function is shared by all batches.

        Args:
          model: as in :meth:`__call__`.
          x: inputs ``(N, ...)`` in [0, 1].
          y: integer labels ``(N,)``.
          batch_size: samples per traced call.
          seed: integer seed of the run.
          progress: show a tqdm progress bar.

        Returns:
          An :class:`AttackResult` over all ``N`` samples.

        Raises:
          ValueError: on mismatched shapes, bad labels, or ``batch_size < 1``.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        x, y = as_batch(x, y)
        starts = range(0, len(x), batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=repr(self), unit="batch")
        results = [
            self._attack_batch(model, x[s : s + batch_size], y[s : s + batch_size], (seed, i))
            for i, s in enumerate(starts)
        ]
        return AttackResult.concatenate(results)


class FixedEpsilonAttack(Attack):
    """An attack with budget ``eps`` in norm ``norm``; the base class projects onto that ball.

    Raises:
      ValueError: if ``eps`` is negative or not a number.
    """

    norm = "linf"

    def __init__(self, *, eps, jit_compile="auto", **params):
        try:
            eps = float(eps)
        except (TypeError, ValueError):
            raise ValueError(f"eps must be a number >= 0, got {eps!r}") from None
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        super().__init__(eps=eps, **params, jit_compile=jit_compile)

    @property
    def eps_ball(self):
        return (self.norm, self.eps)
