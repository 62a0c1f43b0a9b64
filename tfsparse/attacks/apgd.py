"""Auto-PGD (APGD, APGD-T), Croce & Hein, "Reliable evaluation of adversarial robustness with an
ensemble of diverse parameter-free attacks", ICML 2020 (Algorithm 1, §3, eqs. 5–6).

APGD is PGD with momentum and a step size that needs no tuning: it starts at ``η = 2ε`` and is
halved, per sample, at the checkpoints ``w_j = ⌈p_j · N_iter⌉`` (:func:`checkpoints`) when the
loss stopped increasing (conditions 1 and 2 of §3.2), the iterate then restarting from the best
point found. The loss is the cross-entropy or the Difference of Logits Ratio (DLR, eq. 5), which
is invariant to shifting and positively scaling the logits; APGD-T maximises the targeted DLR
(eq. 6) towards each of the top classes in turn, as AutoAttack's APGD-T does. The per-norm pieces
(random start, normalisation, projection) come from :mod:`tfsparse.attacks.lp`.
"""

import fractions
import math
import numbers

from tfsparse.attacks import lp
from tfsparse.attacks.base import FixedEpsilonAttack
from tfsparse.attacks.base import positive_int
from tfsparse.attacks.base import labels_from_logits
from tfsparse.attacks.base import loss_per_sample
from tfsparse.compat import tf
from tfsparse.compat import use_xla

LOSSES = ("ce", "dlr")

# Algorithm 1's momentum α: x^{k+1} = P(x^k + α(z^{k+1} - x^k) + (1 - α)(x^k - x^{k-1})).
MOMENTUM = 0.75


def checkpoints(n_iter):
    """The checkpoints ``w_j = ⌈p_j · n_iter⌉`` of Croce & Hein 2020 §3.2, as a sorted list.

    ``p_0 = 0``, ``p_1 = 0.22``, ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``, for every
    ``p_j ≤ 1`` (exact rational arithmetic, so ``⌈0.41 · 100⌉`` is 41, not 42); duplicates (short
    runs) are dropped. ``checkpoints(100)`` is ``[0, 22, 41, 57, 70, 80, 87, 93, 99]``.

    Raises:
      ValueError: if ``n_iter`` is not an integer ≥ 1.
    """
    n_iter = positive_int(n_iter, "n_iter")
    hundredth = fractions.Fraction(1, 100)
    fractions_of_run = [fractions.Fraction(0)]
    previous, current = fractions.Fraction(0), 22 * hundredth
    while current <= 1:
        fractions_of_run.append(current)
        step = max(current - previous - 3 * hundredth, 6 * hundredth)
        previous, current = current, current + step
    return sorted({math.ceil(p * n_iter) for p in fractions_of_run})


def _check_classes(logits, minimum, what):
    num_classes = logits.shape[-1]
    if num_classes is None or num_classes < minimum:
        raise ValueError(
            f"{what} needs logits of at least {minimum} classes, got shape {tuple(logits.shape)}; "
            "use loss='ce' for binary or two-class models"
        )
    return num_classes


def dlr_loss(logits, y):
    """Difference of Logits Ratio, Croce & Hein 2020 eq. 5, per sample.

    ``DLR(x, y) = -(z_y - max_{i≠y} z_i) / (z_π1 - z_π3 + 1e-12)``, ``π`` ordering the logits
    descending. Positive iff ``x`` is misclassified; invariant to adding a constant to the logits
    and (up to the 1e-12) to scaling them by a positive factor, so a large logit scale cannot
    flatten it the way it saturates the cross-entropy.

    Args:
      logits: float ``(batch, C)`` with ``C ≥ 3``.
      y: int labels ``(batch,)``.

    Returns:
      ``(batch,)`` losses (to be maximised).

    Raises:
      ValueError: if the logits have fewer than 3 classes (a binary single logit included).
    """
    logits = tf.convert_to_tensor(logits, tf.float32)
    y = tf.convert_to_tensor(y, tf.int32)
    num_classes = _check_classes(logits, 3, "the DLR loss")
    is_label = tf.cast(tf.one_hot(y, num_classes), tf.bool)
    z_y = tf.reduce_sum(tf.where(is_label, logits, 0.0), axis=-1)
    other = tf.reduce_max(tf.where(is_label, tf.constant(-math.inf, logits.dtype), logits), -1)
    top = tf.math.top_k(logits, 3).values
    return -(z_y - other) / (top[:, 0] - top[:, 2] + 1e-12)


def targeted_dlr_loss(logits, y, target):
    """Targeted DLR, Croce & Hein 2020 eq. 6, per sample.

    ``-(z_y - z_t) / (z_π1 - (z_π3 + z_π4) / 2 + 1e-12)``. Maximising it pushes ``z_t`` above
    ``z_y``. With exactly 3 classes there is no ``π4`` and ``z_π3`` stands in for it (the
    denominator becomes ``z_π1 - z_π3``, still shift and scale invariant); AutoAttack's code
    needs 4 classes.

    Args:
      logits: float ``(batch, C)`` with ``C ≥ 3``.
      y: int true labels ``(batch,)``.
      target: int target classes ``(batch,)``.

    Returns:
      ``(batch,)`` losses (to be maximised).

    Raises:
      ValueError: if the logits have fewer than 3 classes.
    """
    logits = tf.convert_to_tensor(logits, tf.float32)
    y = tf.convert_to_tensor(y, tf.int32)
    target = tf.convert_to_tensor(target, tf.int32)
    num_classes = _check_classes(logits, 3, "the targeted DLR loss")
    z_y = tf.gather(logits, y, axis=1, batch_dims=1)
    z_t = tf.gather(logits, target, axis=1, batch_dims=1)
    top = tf.math.top_k(logits, min(num_classes, 4)).values
    third_fourth = top[:, 2] if num_classes == 3 else 0.5 * (top[:, 2] + top[:, 3])
    return -(z_y - z_t) / (top[:, 0] - third_fourth + 1e-12)


def _loss_and_gradient(model_fn, x, y, loss_fn, eot_samples, gradient=True):
    """Loss ``(batch,)``, its input gradient (or None) and "misclassified" at ``x``.

    With ``eot_samples > 1`` loss, gradient and logits are means over that many forward passes
    (the EOT estimate of Athalye et al. 2018 for random models; AutoAttack's ``rand`` version).
    The misclassification is read from the mean logits (AutoAttack reads the last pass, which on
    a very noisy model flags points as fooled by chance and stops improving them).
    """

    def one_pass():
        if not gradient:
            logits = model_fn(x)
            return loss_fn(logits, y), None, logits
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = model_fn(x)
            loss = loss_fn(logits, y)
            total = tf.reduce_sum(loss)
        return loss, tape.gradient(total, x), logits

    loss, grad, logits = one_pass()
    if eot_samples > 1:

        def body(i, loss_sum, grad_sum, logits_sum):
            loss_i, grad_i, logits_i = one_pass()
            grad_sum = grad_sum + grad_i if gradient else grad_sum
            return i + 1, loss_sum + loss_i, grad_sum, logits_sum + logits_i

        grad_init = grad if gradient else tf.zeros([])
        _, loss, grad_sum, logits = tf.while_loop(
            lambda i, *_: i < eot_samples, body, (tf.constant(1), loss, grad_init, logits)
        )
        loss = loss / float(eot_samples)
        logits = logits / float(eot_samples)
        grad = grad_sum / float(eot_samples) if gradient else None
    return loss, grad, tf.not_equal(labels_from_logits(logits), y)


def apgd_perturb(
    model_fn,
    x,
    y,
    *,
    eps,
    steps,
    norm="linf",
    loss_fn=None,
    loss_args=(),
    rho=0.75,
    eot_samples=1,
    x_init=None,
    seed=None,
    drop_fooled=False,
):
    """One APGD run (Croce & Hein 2020, Algorithm 1) in pure TensorFlow, per sample.

    No ``tf.function`` of its own; the ``steps`` iterations run in one ``tf.while_loop``. With
    ``P`` the projection onto the ε-ball and then [0, 1] and ``g`` = ``sign`` (l∞) or the
    l2-normalised gradient::

        x¹ = P(x⁰ + η g(∇f(x⁰)))
        z^{k+1} = P(x^k + η g(∇f(x^k)))
        x^{k+1} = P(x^k + 0.75 (z^{k+1} - x^k) + 0.25 (x^k - x^{k-1}))

    with ``η = 2ε`` at the start. ``x_max`` / ``f_max`` track the highest loss. At each
    checkpoint ``w_j`` of :func:`checkpoints` (after computing ``x^{w_j}``), per sample, η is
    halved and ``x^{w_j}`` replaced by ``x_max`` (its gradient reused) if

      1. fewer than ``rho · (w_j - w_{j-1})`` of the steps since ``w_{j-1}`` increased the loss
         (``f(x^{i+1}) > f(x^i)``), or
      2. η was not halved at ``w_{j-1}`` and ``f_max`` has not grown since ``w_{j-1}``.

    Condition 2 is read literally from the paper, so it can fire at ``w_1`` (``η`` and the
    best loss unchanged since the start); AutoAttack's code skips it there. The window of
    condition 1 is the ``w_j - w_{j-1}`` steps ending at the checkpoint, as in AutoAttack's code
    (Algorithm 1 tests after ``x^{w_j + 1}`` but counts up to ``x^{w_j}``). Every iterate,
    ``x⁰`` included, is also checked for misclassification: a sample misclassified at any
    iterate counts as fooled.

    ``drop_fooled`` stops iterating a sample once it is fooled: the loop state is compacted to
    the samples still correctly classified whenever at least an eighth of them (and one) have
    been fooled since the last compaction, so the later iterations cost only what the robust
    samples need. Every sample's trajectory is per-sample, so which samples are fooled (and the
    loss and iterates of those never fooled) is the same as without it; a fooled sample returns
    the misclassifying iterate it had when dropped instead of the last one. It needs dynamic
    shapes, so not under XLA.

    Cost: ``steps`` forward+backward passes (at ``x⁰ … x^{N-1}``) and one forward pass at
    ``x^N``, each times ``eot_samples``, over the whole batch (``drop_fooled=False``) or over
    the samples not yet dropped.

    Args:
      model_fn: ``x -> logits``, called as given (pass ``training=False`` yourself).
      x: float32 inputs ``(batch, ...)`` in [0, 1].
      y: int labels ``(batch,)``.
      eps: radius of the ball, ≥ 0.
      steps: iterations ``N_iter`` (Python int ≥ 1).
      norm: ``"linf"`` or ``"l2"``.
      loss_fn: ``(logits, y, *loss_args) -> (batch,)`` loss to maximise; default
        cross-entropy (:func:`tfsparse.attacks.base.loss_per_sample`).
      loss_args: per-sample tensors ``(batch, ...)`` handed to ``loss_fn`` after ``y`` (the
        target class of APGD-T), kept aligned with the samples when they are dropped.
      rho: threshold ρ of condition 1 (paper: 0.75).
      eot_samples: forward passes averaged per loss and gradient (random models).
      x_init: the starting point ``x⁰`` (inside the ball and the box); default a uniform random
        point of the ball from ``seed``, clipped to [0, 1].
      seed: ``None`` or a shape-``(2,)`` integer seed for the random start.
      drop_fooled: stop iterating fooled samples (see above).

    Returns:
      ``(x_adv, fooled, f_max)``: per sample a misclassifying iterate if there was one (the last
      one, or the one held when dropped), else ``x_max``; whether some iterate was
      misclassified; the highest loss reached (until dropped).

    Raises:
      ValueError: on an unknown norm, ``steps < 1``, ``rho`` outside (0, 1] or
        ``eot_samples < 1``.
    """
    lp.check_norm(norm)
    steps, rho, eot_samples = _check_schedule(steps, rho, eot_samples)
    loss_fn = loss_per_sample if loss_fn is None else loss_fn
    x = tf.convert_to_tensor(x, tf.float32)
    y = tf.convert_to_tensor(y, tf.int32)
    loss_args = tuple(tf.convert_to_tensor(a) for a in loss_args)
    if x_init is None:
        if seed is None:
            seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
        x_init = lp.random_start(x, eps, norm, seed)
    x_init = lp.clip_to_box(lp.project(tf.convert_to_tensor(x_init, tf.float32), x, eps, norm))

    def evaluate(point, s, gradient=True):
        return _loss_and_gradient(model_fn, point, s["y"],
                                  lambda z, labels: loss_fn(z, labels, *s["args"]),
                                  eot_samples, gradient)

    def step(k, s):
        def constrain(point):
            return lp.clip_to_box(lp.project(point, s["x"], eps, norm))

        x_k = s["x_k"]
        z = constrain(x_k + s["eta"] * lp.normalize(s["grad"], norm))
        alpha = tf.where(tf.equal(k, 0), 1.0, MOMENTUM)  # x¹ is a plain projected step
        return constrain(x_k + alpha * (z - x_k) + (1.0 - alpha) * (x_k - s["x_prev"]))

    # windows[w] = w_j - w_{j-1} when w = w_j is a checkpoint, else 0.
    marks = checkpoints(steps)
    windows = [0] * (steps + 1)
    for before, after in zip(marks, marks[1:]):
        windows[after] = after - before
    windows = tf.constant(windows, tf.float32)

    live = {"x": x, "y": y, "args": loss_args}  # the samples still iterated, and their state
    loss_0, grad_0, fooled_0 = evaluate(x_init, live)
    live.update(
        x_k=x_init,  # x^k
        x_prev=x_init,  # x^{k-1}
        grad=grad_0,  # ∇f(x^k)
        loss=loss_0,  # f(x^k)
        eta=2.0 * eps * tf.ones_like(lp.per_sample(loss_0, x)),  # η, per sample
        x_max=x_init,
        grad_max=grad_0,  # ∇f(x_max)
        f_max=loss_0,
        x_fool=x_init,  # last misclassified iterate
        fooled=fooled_0,
        increases=tf.zeros_like(loss_0),  # loss increases since the last checkpoint
        f_max_check=loss_0,  # f_max at the last checkpoint
        halved=tf.zeros_like(fooled_0),  # η halved at the last checkpoint
    )
    # Results of the samples no longer iterated, by row of the batch.
    done = {"x_adv": x_init, "fooled": tf.zeros_like(fooled_0), "f_max": loss_0}
    rows = tf.range(tf.shape(y)[0])  # row of the batch of each live sample

    def body(k, rows, done, s):
        s = dict(s)
        x_new = step(k, s)
        loss_new, grad_new, fooled_new = evaluate(x_new, s)
        s["increases"] += tf.cast(loss_new > s["loss"], loss_new.dtype)
        better = loss_new > s["f_max"]
        s["x_max"] = tf.where(lp.per_sample(better, x_new), x_new, s["x_max"])
        s["grad_max"] = tf.where(lp.per_sample(better, x_new), grad_new, s["grad_max"])
        s["f_max"] = tf.where(better, loss_new, s["f_max"])
        s["x_fool"] = tf.where(lp.per_sample(fooled_new, x_new), x_new, s["x_fool"])
        s["fooled"] = s["fooled"] | fooled_new

        window = windows[k + 1]
        at_check = window > 0
        halve = at_check & (
            (s["increases"] < rho * window)  # condition 1
            | (~s["halved"] & (s["f_max"] <= s["f_max_check"]))  # condition 2
        )
        back = lp.per_sample(halve, x_new)
        s["eta"] = tf.where(back, 0.5 * s["eta"], s["eta"])
        s["x_prev"] = s["x_k"]
        s["x_k"] = tf.where(back, s["x_max"], x_new)
        s["grad"] = tf.where(back, s["grad_max"], grad_new)
        s["loss"] = tf.where(halve, s["f_max"], loss_new)
        s["increases"] = tf.where(at_check, tf.zeros_like(s["increases"]), s["increases"])
        s["f_max_check"] = tf.where(at_check, s["f_max"], s["f_max_check"])
        s["halved"] = tf.where(at_check, halve, s["halved"])
        if drop_fooled:
            n_fooled = tf.reduce_sum(tf.cast(s["fooled"], tf.int32))
            enough = n_fooled >= tf.maximum(1, (tf.size(rows) + 7) // 8)
            rows, done, s = tf.cond(enough, lambda: _drop_fooled(rows, done, s),
                                    lambda: (rows, done, s))
        return k + 1, rows, done, s

    def more(k, rows, *_):
        return (k < steps - 1) & (tf.size(rows) > 0) if drop_fooled else k < steps - 1

    loop_vars = (tf.constant(0), rows, done, live)
    invariants = None
    if drop_fooled:
        invariants = (tf.TensorShape([]), tf.TensorShape([None]),
                      tf.nest.map_structure(lambda t: t.shape, done),
                      tf.nest.map_structure(lambda t: tf.TensorShape([None]) + t.shape[1:], live))
    k, rows, done, s = tf.while_loop(more, body, loop_vars, shape_invariants=invariants)

    def finish():
        # The last iterate x^N needs its loss, not its gradient.
        x_last = step(k, s)
        loss_last, _, fooled_last = evaluate(x_last, s, gradient=False)
        better = loss_last > s["f_max"]
        x_max = tf.where(lp.per_sample(better, x_last), x_last, s["x_max"])
        f_max = tf.where(better, loss_last, s["f_max"])
        x_fool = tf.where(lp.per_sample(fooled_last, x_last), x_last, s["x_fool"])
        fooled = s["fooled"] | fooled_last
        return tf.where(lp.per_sample(fooled, x_last), x_fool, x_max), fooled, f_max

    if drop_fooled:  # never call the model on an empty batch (oneDNN's conv mishandles it)
        x_adv, fooled, f_max = tf.cond(tf.size(rows) > 0, finish,
                                       lambda: (s["x_k"], s["fooled"], s["f_max"]))
    else:
        x_adv, fooled, f_max = finish()
    rows = rows[:, None]
    return (tf.tensor_scatter_nd_update(done["x_adv"], rows, x_adv),
            tf.tensor_scatter_nd_update(done["fooled"], rows, fooled),
            tf.tensor_scatter_nd_update(done["f_max"], rows, f_max))


def _drop_fooled(rows, done, live):
    """Moves the fooled samples of ``live`` (APGD's loop state) into ``done``, by batch row."""
    gone, kept = tf.where(live["fooled"]), tf.where(~live["fooled"])
    gone_rows = tf.gather_nd(rows, gone)[:, None]
    done = {
        "x_adv": tf.tensor_scatter_nd_update(done["x_adv"], gone_rows,
                                             tf.gather_nd(live["x_fool"], gone)),
        "fooled": tf.tensor_scatter_nd_update(done["fooled"], gone_rows,
                                              tf.ones_like(gone_rows[:, 0], tf.bool)),
        "f_max": tf.tensor_scatter_nd_update(done["f_max"], gone_rows,
                                             tf.gather_nd(live["f_max"], gone)),
    }
    live = tf.nest.map_structure(lambda t: tf.gather_nd(t, kept), live)
    return tf.gather_nd(rows, kept), done, live


def _check_schedule(steps, rho, eot_samples):
    steps = positive_int(steps, "steps")
    if not (isinstance(rho, numbers.Real) and 0 < rho <= 1):
        raise ValueError(f"rho must be a number in (0, 1], got {rho!r}")
    eot_samples = positive_int(eot_samples, "eot_samples")
    return steps, float(rho), eot_samples


def _check_restarts(restarts):
    return positive_int(restarts, "restarts")


class _AutoPGD(FixedEpsilonAttack):
    """Shared APGD machinery: runs, each on the samples no earlier run has fooled."""

    @property
    def norm(self):
        return self._params["norm"]

    def _runs(self, model_fn, x, y, logits, seed, n_runs, loss_fn, run_target=None):
        """The best of ``n_runs`` APGD runs per sample, in one ``tf.while_loop``.

        Run ``i`` starts from its own uniform random point of the ball (seed folded with ``i``,
        drawn for the whole batch so a sample's start does not depend on which samples are still
        attacked) and attacks only the samples not yet fooled; samples misclassified on clean
        input are never attacked (their ``x_adv`` is ``x``; with ``eot_samples > 1`` judged on
        the mean logits of that many passes). Per sample a fooling run wins, else the highest
        loss. Without XLA every run also stops iterating a sample once it is fooled
        (``apgd_perturb(drop_fooled=True)``): the same samples are fooled, at a cost that
        shrinks with the samples left.

        Args:
          loss_fn: ``(logits, y) -> (batch,)``, or ``(logits, y, target)`` with ``run_target``.
          run_target: ``None`` or ``i -> (batch,)`` int target classes of run ``i``.
        """
        xla = use_xla(self.jit_compile)
        if self.eot_samples > 1:  # a random model: judge "misclassified" on the mean logits
            logits = tf.while_loop(
                lambda i, _: i < self.eot_samples,
                lambda i, total: (i + 1, total + model_fn(x)),
                (tf.constant(1), logits),
            )[1] / float(self.eot_samples)
        fooled = tf.not_equal(labels_from_logits(logits), y)
        best_loss = tf.fill(tf.shape(y), tf.constant(-math.inf, tf.float32))

        def perturb(x_sub, y_sub, start_sub, *target_sub):
            return apgd_perturb(
                model_fn,
                x_sub,
                y_sub,
                eps=self.eps,
                steps=self.steps,
                norm=self.norm,
                loss_fn=loss_fn,
                loss_args=target_sub,
                rho=self.rho,
                eot_samples=self.eot_samples,
                x_init=start_sub,
                drop_fooled=not xla,
            )

        def body(i, best_x, fooled, best_loss):
            start = lp.clip_to_box(
                lp.random_start(x, self.eps, self.norm, tf.random.experimental.stateless_fold_in(
                    seed, i))
            )
            active = ~fooled
            x_new, fooled_new, loss_new = lp.on_active_rows(
                active,
                perturb,
                (x, y, start) + (() if run_target is None else (run_target(i),)),
                (x, tf.zeros_like(fooled), best_loss),
                xla,
            )
            take = active & (fooled_new | (loss_new > best_loss))
            return (
                i + 1,
                tf.where(lp.per_sample(take, x), x_new, best_x),
                fooled | (active & fooled_new),
                tf.where(take, loss_new, best_loss),
            )

        return tf.while_loop(
            lambda i, _, fooled, __: (i < n_runs) & tf.reduce_any(~fooled),
            body,
            (tf.constant(0), x, fooled, best_loss),
        )[1]


class APGD(_AutoPGD):
    """Auto-PGD with the cross-entropy or DLR loss, l∞ or l2 (Croce & Hein 2020, Algorithm 1).

    Each of ``restarts`` runs of :func:`apgd_perturb` starts from a uniform random point of the
    ε-ball and attacks only the samples no earlier run has fooled. Per sample the result is a
    misclassified iterate if any run found one (a sample fooled at any iterate counts as
    fooled), else the highest-loss point. AutoAttack's standard components are
    ``APGD(loss="ce")`` and :class:`APGDT`, both with ``steps=100``; with ``eot_samples=20`` this
    is its ``rand`` version for models with random inference (EOT gradients, like
    :class:`~tfsparse.attacks.EOTPGD`). ``loss="dlr"`` needs at least 3 classes; the
    cross-entropy also works on a binary single-logit model (sigmoid cross-entropy).

    Example::

        result = APGD(eps=8 / 255, loss="ce").run(model, x_test, y_test)
        print(result.adv_accuracy)

    Args:
      eps: radius of the ball in ``norm`` (pixel units).
      norm: ``"linf"`` or ``"l2"``.
      loss: ``"ce"`` (softmax / sigmoid cross-entropy) or ``"dlr"`` (eq. 5).
      steps: iterations per run, ``N_iter`` (paper: 100).
      restarts: runs per sample.
      rho: threshold ρ of the step-size condition 1 (paper: 0.75).
      eot_samples: forward/backward passes averaged per step (1 for deterministic models).
      jit_compile: ``True``, ``False`` or ``"auto"`` (XLA on GPU only).

    Raises:
      ValueError: on a bad ``eps``, an unknown norm or loss, ``steps < 1``, ``restarts < 1``,
        ``rho`` outside (0, 1] or ``eot_samples < 1``; when attacking, ``loss="dlr"`` on a model
        with fewer than 3 classes.
    """

    name = "apgd"

    def __init__(
        self,
        *,
        eps,
        norm="linf",
        loss="ce",
        steps=100,
        restarts=1,
        rho=0.75,
        eot_samples=1,
        jit_compile="auto",
    ):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        steps, rho, eot_samples = _check_schedule(steps, rho, eot_samples)
        super().__init__(
            eps=eps,
            norm=lp.check_norm(norm),
            loss=loss,
            steps=steps,
            restarts=_check_restarts(restarts),
            rho=rho,
            eot_samples=eot_samples,
            jit_compile=jit_compile,
        )

    def _attack(self, model_fn, x, y, logits, seed):
        if self.loss == "dlr":
            _check_classes(logits, 3, "APGD with loss='dlr'")
        loss_fn = dlr_loss if self.loss == "dlr" else loss_per_sample
        return self._runs(model_fn, x, y, logits, seed, self.restarts, loss_fn)


class APGDT(_AutoPGD):
    """Targeted Auto-PGD with the targeted DLR loss (eq. 6), AutoAttack's APGD-T.

    For each of the ``n_target_classes`` classes with the highest clean logits other than ``y``
    (highest first; at most ``C - 1``), ``restarts`` APGD runs maximise the targeted DLR towards
    that class, each attacking only the samples still correctly classified. As in AutoAttack,
    success means *misclassified* (any class other than ``y``, not necessarily the target), and
    per sample the first fooling run's result is kept, else the highest targeted-DLR point.
    Needs at least 3 classes.

    Example::

        result = APGDT(eps=8 / 255).run(model, x_test, y_test)

    Args:
      eps, norm, steps, restarts, rho, eot_samples, jit_compile: as in :class:`APGD`.
      n_target_classes: target classes tried per sample (AutoAttack: 9).

    Raises:
      ValueError: as :class:`APGD`, or ``n_target_classes < 1``; when attacking, a model with
        fewer than 3 classes.
    """

    name = "apgd_t"

    def __init__(
        self,
        *,
        eps,
        norm="linf",
        steps=100,
        n_target_classes=9,
        restarts=1,
        rho=0.75,
        eot_samples=1,
        jit_compile="auto",
    ):
        n_target_classes = positive_int(n_target_classes, "n_target_classes")
        steps, rho, eot_samples = _check_schedule(steps, rho, eot_samples)
        super().__init__(
            eps=eps,
            norm=lp.check_norm(norm),
            steps=steps,
            n_target_classes=n_target_classes,
            restarts=_check_restarts(restarts),
            rho=rho,
            eot_samples=eot_samples,
            jit_compile=jit_compile,
        )

    def _attack(self, model_fn, x, y, logits, seed):
        num_classes = _check_classes(logits, 3, "APGDT (targeted DLR)")
        n_targets = min(self.n_target_classes, num_classes - 1)
        is_label = tf.cast(tf.one_hot(y, num_classes), tf.bool)
        others = tf.where(is_label, tf.constant(-math.inf, logits.dtype), logits)
        targets = tf.math.top_k(others, n_targets).indices  # (batch, n_targets), best first
        restarts = self.restarts

        def run_target(i):
            return tf.gather(targets, i // restarts, axis=1)

        return self._runs(model_fn, x, y, logits, seed, n_targets * restarts, targeted_dlr_loss,
                          run_target)
