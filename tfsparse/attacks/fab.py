"""FAB-T, the targeted Fast Adaptive Boundary attack, Croce & Hein, "Minimally distorted adversarial
examples with a fast adaptive boundary attack", ICML 2020 (Algorithm 1, §3), in the targeted form
AutoAttack's standard ensemble runs (Croce & Hein, "Reliable evaluation of adversarial robustness
with an ensemble of diverse parameter-free attacks", ICML 2020, and its ``fab_pt.py``).

FAB looks for the adversarial point of smallest l∞ or l2 norm. At the iterate ``x⁽ⁱ⁾`` it linearises
``g = f_y - f_t`` (label ``y``, target ``t``), projects both ``x⁽ⁱ⁾`` and the original ``x_orig``
onto the linearised boundary ``{z : g(x⁽ⁱ⁾) + ∇g(x⁽ⁱ⁾)ᵀ(z - x⁽ⁱ⁾) = 0}`` intersected with the box
[0, 1] (§3: :func:`project_onto_hyperplane_box`), and takes the biased step of Algorithm 1::

    x⁽ⁱ⁺¹⁾ = Π_box((1 - α)(x⁽ⁱ⁾ + η δ⁽ⁱ⁾) + α (x_orig + η δ_orig⁽ⁱ⁾)),
    α = min(‖δ⁽ⁱ⁾‖ / (‖δ⁽ⁱ⁾‖ + ‖δ_orig⁽ⁱ⁾‖), α_max),

with overshoot ``η`` (1.05) and ``α_max`` 0.1. When ``x⁽ⁱ⁺¹⁾`` is misclassified it is recorded if
its norm is the smallest so far, and the iterate goes back towards ``x_orig``
(``x⁽ⁱ⁺¹⁾ ← (1 - β) x_orig + β x⁽ⁱ⁺¹⁾``, ``β = 0.9``, the backward step of Algorithm 1).
Where the paper leaves details open (targets, random starts, what counts as fooled) AutoAttack's
``fab_pt.py`` is followed.
"""

import math
import numbers

from tfsparse.attacks import lp
from tfsparse.attacks.base import FixedEpsilonAttack
from tfsparse.attacks.base import positive_int
from tfsparse.attacks.base import is_binary
from tfsparse.attacks.base import labels_from_logits
from tfsparse.compat import tf
from tfsparse.compat import use_xla

# Stand-in for "never saturates" (coordinates with a zero normal component); finite, so that
# ``0 · _NEVER`` stays 0 in the cumulative sums below.
_NEVER = 1e30


def project_onto_hyperplane_box(p, w, c, norm):
    """The smallest ``δ`` (in ``norm``) with ``wᵀδ = c`` and ``p + δ ∈ [0, 1]``, per sample.

    This is the projection of ``p`` onto the hyperplane ``{z : wᵀz = wᵀp + c}`` intersected with
    the box (Croce & Hein 2020, §3). With the sign of ``c`` folded into ``w`` (so
    ``c ≥ 0``), every coordinate moves in the direction ``sign(w_i)`` by at most its room to the
    box, ``m_i`` (``1 - p_i`` or ``p_i``). The Lagrange conditions give the solution as a
    function of one dual variable ``λ ≥ 0``:

    * l2: ``δ_i = sign(w_i) · min(λ |w_i|, m_i)``;
    * l∞: ``δ_i = sign(w_i) · min(λ, m_i)`` (``λ`` is the norm; ``w_i = 0`` gives ``δ_i = 0``).

    ``h(λ) = wᵀδ(λ)`` is nondecreasing and piecewise linear with one breakpoint per coordinate
    (where it reaches its bound), so instead of bisecting on ``λ`` the breakpoints are sorted and
    ``h`` is evaluated at all of them with cumulative sums; the root is then found exactly by
    linear interpolation on its segment (``O(d log d)``, the paper's complexity). If the
    hyperplane does not meet the box (``c > h(∞)``) the box corner closest to it is returned,
    ``δ_i = sign(w_i) · m_i``, as in the reference implementation.

    Args:
      p: float ``(batch, d)`` points in [0, 1].
      w: float ``(batch, d)`` normals.
      c: float ``(batch,)`` required values of ``wᵀδ``.
      norm: ``"linf"`` or ``"l2"``.

    Returns:
      ``δ``, float ``(batch, d)``.
    """
    lp.check_norm(norm)
    flip = tf.where(c >= 0, 1.0, -1.0)
    w = w * flip[:, None]
    c = c * flip
    direction = tf.sign(w)
    room = tf.maximum(tf.where(w > 0, 1.0 - p, tf.where(w < 0, p, 0.0)), 0.0)
    size = tf.abs(w)
    moving = size > 0
    # Coordinate i adds s_i·λ to h until λ reaches its breakpoint t_i, then a_i = s_i·t_i
    # (= |w_i|·m_i) for good; a coordinate with w_i = 0 adds nothing (s_i = 0, t_i "never").
    if norm == "l2":
        slope = tf.square(w)
        breakpoint = tf.where(moving, room / tf.where(moving, size, 1.0), _NEVER)
    else:
        slope = size
        breakpoint = tf.where(moving, room, _NEVER)
    # Ties need no stable order: tied coordinates give the same h (a_j = s_j·t_j).
    order = tf.argsort(breakpoint, axis=1)
    t = tf.gather(breakpoint, order, batch_dims=1)
    s = tf.gather(slope, order, batch_dims=1)
    a = s * t
    saturated_before = tf.cumsum(a, axis=1, exclusive=True)  # Σ_{j<k} a_j
    free_after = tf.cumsum(s, axis=1, reverse=True, exclusive=True)  # Σ_{j>k} s_j
    free_from = free_after + s  # Σ_{j≥k} s_j
    # h at λ = t_k: coordinates j ≤ k at their bound, the others still growing.
    h = saturated_before + a + t * free_after
    k = tf.reduce_sum(tf.cast(h < c[:, None], tf.int32), axis=1)  # segment holding the root
    feasible = k < tf.shape(p)[1]
    k_safe = tf.minimum(k, tf.shape(p)[1] - 1)
    lam = tf.math.divide_no_nan(
        c - tf.gather(saturated_before, k_safe, batch_dims=1),
        tf.gather(free_from, k_safe, batch_dims=1),
    )
    lam = tf.maximum(lam, 0.0)[:, None]
    if norm == "l2":
        step = tf.minimum(lam * size, room)
    else:
        step = tf.minimum(lam, room)
    step = tf.where(feasible[:, None], step, room)
    return direction * step


def _margin_and_gradient(model_fn, x, y, target, binary):
    """``g = f_y - f_t`` (binary logit ``z``: ``s·z``, ``s = 2y - 1``) and ``∇ₓ g``."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = model_fn(x)
        if binary:
            g = (2.0 * tf.cast(y, z.dtype) - 1.0) * z[:, 0]
        else:
            g = tf.gather(z, y, batch_dims=1) - tf.gather(z, target, batch_dims=1)
        total = tf.reduce_sum(g)
    return g, tape.gradient(total, x)


def fab_perturb(
    model_fn,
    x,
    y,
    target,
    *,
    steps,
    norm="linf",
    eta=1.05,
    beta=0.9,
    alpha_max=0.1,
    x_init=None,
    stop_at=None,
):
    """One targeted FAB run (Croce & Hein 2020, Algorithm 1) in pure TensorFlow, per sample.

    No ``tf.function`` of its own; the ``steps`` iterations run in one ``tf.while_loop``. Each
    iteration costs one forward+backward pass (the linearisation at ``x⁽ⁱ⁾``) and one forward pass
    (is ``x⁽ⁱ⁺¹⁾`` misclassified?), as in AutoAttack's ``fab_pt.py``. A sample counts as
    adversarial when its prediction differs from ``y`` (any class, not only the target).

    ``stop_at`` (a norm, e.g. AutoAttack's ε) stops iterating a sample once it has a
    misclassified iterate within that distance: the loop state is compacted to the other samples
    whenever at least an eighth of them (and one) have reached it, so later iterations cost only
    what the samples still above it need. Each sample's trajectory is its own, so whether a
    sample gets within ``stop_at`` is the same as without it (the smallest norm only decreases);
    a stopped sample returns the point it had when stopped instead of the run's smallest. It
    needs dynamic shapes, so not under XLA.

    Args:
      model_fn: ``x -> logits``, called as given.
      x: float32 inputs ``x_orig`` ``(batch, ...)`` in [0, 1], correctly classified.
      y: int labels ``(batch,)``.
      target: int target classes ``(batch,)`` (ignored for a binary single-logit model).
      steps: iterations (Python int ≥ 1).
      norm: ``"linf"`` or ``"l2"``.
      eta: overshoot ``η`` of the step (paper: 1.05).
      beta: backward step ``β`` after an adversarial iterate (paper: 0.9).
      alpha_max: cap ``α_max`` of the bias towards ``x_orig`` (paper: 0.1).
      x_init: starting point ``x⁽⁰⁾`` in [0, 1]; default ``x``.
      stop_at: ``None`` (run every sample ``steps`` iterations) or a distance (see above).

    Returns:
      ``(x_best, best_norm)``: per sample the misclassified iterate of smallest ``norm`` distance
      to ``x`` (until stopped) and that distance; ``x`` and ``inf`` where no iterate was
      misclassified.
    """
    lp.check_norm(norm)
    x = tf.convert_to_tensor(x, tf.float32)
    y = tf.convert_to_tensor(y, tf.int32)
    target = tf.convert_to_tensor(target, tf.int32)
    x_init = x if x_init is None else lp.clip_to_box(tf.convert_to_tensor(x_init, tf.float32))
    binary = is_binary(model_fn(x[:0]))

    def body(i, rows, done, s):
        s = dict(s)
        x_orig, x_cur = s["x"], s["x_cur"]
        flat_shape = tf.stack([tf.shape(x_orig)[0], -1])
        x0 = tf.reshape(x_orig, flat_shape)
        g, grad = _margin_and_gradient(model_fn, x_cur, s["y"], s["target"], binary)
        w = tf.reshape(grad, flat_shape)
        x1 = tf.reshape(x_cur, flat_shape)
        # Linearised boundary through x⁽ⁱ⁾: g + wᵀ(z - x⁽ⁱ⁾) = 0, i.e. wᵀδ = -g - wᵀ(p - x⁽ⁱ⁾).
        c_cur = -g
        c_orig = -g - tf.reduce_sum(w * (x0 - x1), axis=1)
        delta = project_onto_hyperplane_box(
            tf.concat([x1, x0], 0), tf.concat([w, w], 0), tf.concat([c_cur, c_orig], 0), norm
        )
        batch = tf.shape(x1)[0]
        delta_cur, delta_orig = delta[:batch], delta[batch:]
        size_cur = tf.maximum(lp.per_sample_norm(delta_cur, norm), 1e-8)
        size_orig = tf.maximum(lp.per_sample_norm(delta_orig, norm), 1e-8)
        alpha = tf.clip_by_value(size_cur / (size_cur + size_orig), 0.0, alpha_max)[:, None]
        x_new = lp.clip_to_box(
            (1.0 - alpha) * (x1 + eta * delta_cur) + alpha * (x0 + eta * delta_orig)
        )
        x_new = tf.reshape(x_new, tf.shape(x_orig))
        adversarial = tf.not_equal(labels_from_logits(model_fn(x_new)), s["y"])
        distance = lp.per_sample_norm(x_new - x_orig, norm)
        better = adversarial & (distance < s["best_norm"])
        s["x_best"] = tf.where(lp.per_sample(better, x_orig), x_new, s["x_best"])
        s["best_norm"] = tf.where(better, distance, s["best_norm"])
        s["x_cur"] = tf.where(lp.per_sample(adversarial, x_orig),
                              (1.0 - beta) * x_orig + beta * x_new, x_new)
        if stop_at is not None:
            reached = s["best_norm"] <= stop_at
            enough = tf.reduce_sum(tf.cast(reached, tf.int32)) >= tf.maximum(
                1, (tf.size(rows) + 7) // 8)
            rows, done, s = tf.cond(enough, lambda: _drop_reached(rows, done, s, reached),
                                    lambda: (rows, done, s))
        return i + 1, rows, done, s

    best_norm = tf.fill(tf.shape(y), tf.constant(math.inf, tf.float32))
    live = {"x": x, "y": y, "target": target, "x_cur": x_init, "x_best": x, "best_norm": best_norm}
    done = {"x_best": x, "best_norm": best_norm}  # the stopped samples, by row of the batch
    rows = tf.range(tf.shape(y)[0])
    invariants = None
    if stop_at is not None:
        invariants = (tf.TensorShape([]), tf.TensorShape([None]),
                      tf.nest.map_structure(lambda t: t.shape, done),
                      tf.nest.map_structure(lambda t: tf.TensorShape([None]) + t.shape[1:], live))
    _, rows, done, live = tf.while_loop(
        lambda i, rows, *_: (i < steps) & (tf.size(rows) > 0),
        body,
        (tf.constant(0), rows, done, live),
        shape_invariants=invariants,
    )
    rows = rows[:, None]
    return (tf.tensor_scatter_nd_update(done["x_best"], rows, live["x_best"]),
            tf.tensor_scatter_nd_update(done["best_norm"], rows, live["best_norm"]))


def _drop_reached(rows, done, live, reached):
    """Moves the samples of ``live`` (FAB's loop state) that ``reached`` into ``done``, by row."""
    gone, kept = tf.where(reached), tf.where(~reached)
    gone_rows = tf.gather_nd(rows, gone)[:, None]
    done = {key: tf.tensor_scatter_nd_update(done[key], gone_rows, tf.gather_nd(live[key], gone))
            for key in done}
    live = tf.nest.map_structure(lambda t: tf.gather_nd(t, kept), live)
    return tf.gather_nd(rows, kept), done, live


def _check_number(value, name, low, high, low_open=False):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be a number in {bracket}{low}, {high}], got {value!r}")
    return float(value)


class FABT(FixedEpsilonAttack):
    """Targeted FAB (FAB-T), l∞ or l2, AutoAttack's standard component (Croce & Hein 2020).

    For each of the ``n_target_classes`` classes with the highest clean logits other than ``y``
    (highest first; at most ``C - 1``; a binary single-logit model has one), ``restarts`` FAB
    runs of ``steps`` iterations (:func:`fab_perturb`) attack the samples not fooled so far. The
    first run of each target starts at ``x``; the others at a random point
    ``x + ε/2 · u / ‖u‖`` (``u`` uniform in [-1, 1]ᵈ for l∞, Gaussian for l2, clipped to the
    box), as in AutoAttack's ``fab_pt.py``. FAB itself is a minimum-norm attack and ignores ``ε``
    while it runs; as in AutoAttack a sample counts as fooled only if the smallest-norm
    misclassified point found has norm ``≤ ε``. That point is returned for fooled samples, and
    ``x`` itself for all others (never a projection of a point found outside the ball, which
    would generally not be adversarial), so the base class's ε-ball projection and [0, 1] clip
    leave the result unchanged and ``success`` means "misclassified inside the ε-ball". Samples
    misclassified on clean input are not attacked (``x_adv = x``). ``eps = 0`` returns ``x``.

    All runs of all targets execute in one traced ``tf.while_loop``; without XLA each run works
    only on the samples still to fool (dynamic gather), with XLA on the whole batch, masked.
    With ``stop_when_fooled`` (AutoAttack's setting: only robust accuracy counts there) a run
    also stops iterating a sample, without XLA, as soon as it has a misclassified point within
    ``ε`` (``fab_perturb(stop_at=eps)``): the same samples are fooled, at a cost that shrinks
    with the samples left, but a fooled sample's point is the first one found within ``ε``,
    not the smallest-norm one.

    Example::

        result = FABT(eps=8 / 255, norm="linf").run(model, x_test, y_test)
        print(result.adv_accuracy)

    Args:
      eps: radius of the ball in ``norm`` (pixel units).
      norm: ``"linf"`` or ``"l2"``.
      steps: iterations per run (AutoAttack: 100).
      n_target_classes: target classes tried per sample (AutoAttack: 9).
      restarts: runs per target (AutoAttack's standard FAB-T: 1).
      eta: overshoot ``η`` (paper: 1.05).
      beta: backward step ``β`` (paper: 0.9).
      alpha_max: cap ``α_max`` of the bias towards the original point (paper: 0.1).
      stop_when_fooled: stop a sample at its first misclassified point within ``ε`` (see above).
      jit_compile: ``True``, ``False`` or ``"auto"`` (XLA on GPU only).

    Raises:
      ValueError: on a bad ``eps``, an unknown norm, ``steps < 1``, ``n_target_classes < 1``,
        ``restarts < 1``, ``eta < 1``, ``beta`` outside (0, 1], ``alpha_max`` outside [0, 1] or
        a ``stop_when_fooled`` that is not a bool.
    """

    name = "fab_t"

    def __init__(
        self,
        *,
        eps,
        norm="linf",
        steps=100,
        n_target_classes=9,
        restarts=1,
        eta=1.05,
        beta=0.9,
        alpha_max=0.1,
        stop_when_fooled=False,
        jit_compile="auto",
    ):
        if not isinstance(stop_when_fooled, bool):
            raise ValueError(f"stop_when_fooled must be True or False, got {stop_when_fooled!r}")
        steps = positive_int(steps, "steps")
        n_target_classes = positive_int(n_target_classes, "n_target_classes")
        restarts = positive_int(restarts, "restarts")
        super().__init__(
            eps=eps,
            norm=lp.check_norm(norm),
            steps=steps,
            n_target_classes=n_target_classes,
            restarts=restarts,
            eta=_check_number(eta, "eta", 1.0, math.inf),
            beta=_check_number(beta, "beta", 0.0, 1.0, low_open=True),
            alpha_max=_check_number(alpha_max, "alpha_max", 0.0, 1.0),
            stop_when_fooled=stop_when_fooled,
            jit_compile=jit_compile,
        )

    @property
    def norm(self):
        return self._params["norm"]

    def _attack(self, model_fn, x, y, logits, seed):
        if self.eps == 0:  # nothing but x itself is within the ball
            return x
        xla = use_xla(self.jit_compile)
        if is_binary(logits):
            targets = 1 - y[:, None]
            n_targets = 1
        else:
            num_classes = logits.shape[-1]
            n_targets = min(self.n_target_classes, num_classes - 1)
            is_label = tf.cast(tf.one_hot(y, num_classes), tf.bool)
            others = tf.where(is_label, tf.constant(-math.inf, logits.dtype), logits)
            targets = tf.math.top_k(others, n_targets).indices  # (batch, n_targets), best first
        restarts = self.restarts
        fooled = tf.not_equal(labels_from_logits(logits), y)  # clean-misclassified: never touched
        done = fooled

        def perturb(x_sub, y_sub, target_sub, start_sub):
            return fab_perturb(
                model_fn,
                x_sub,
                y_sub,
                target_sub,
                steps=self.steps,
                norm=self.norm,
                eta=self.eta,
                beta=self.beta,
                alpha_max=self.alpha_max,
                x_init=start_sub,
                stop_at=self.eps if self.stop_when_fooled and not xla else None,
            )

        def random_start(i):
            # Drawn for the whole batch, so a sample's start does not depend on which are active.
            noise_seed = tf.random.experimental.stateless_fold_in(seed, i)
            if self.norm == "linf":
                u = tf.random.stateless_uniform(tf.shape(x), noise_seed, -1.0, 1.0)
            else:
                u = tf.random.stateless_normal(tf.shape(x), noise_seed)
            length = lp.per_sample(lp.per_sample_norm(u, self.norm), x)
            return lp.clip_to_box(x + 0.5 * self.eps * tf.math.divide_no_nan(u, length))

        def body(i, x_adv, done):
            target = tf.gather(targets, i // restarts, axis=1)
            start = tf.cond(tf.equal(i % restarts, 0), lambda: x, lambda: random_start(i))
            active = ~done
            x_new, norm_new = lp.on_active_rows(
                active,
                perturb,
                (x, y, target, start),
                (x, tf.fill(tf.shape(y), tf.constant(math.inf, tf.float32))),
                xla,
            )
            take = active & (norm_new <= self.eps)
            return i + 1, tf.where(lp.per_sample(take, x), x_new, x_adv), done | take

        _, x_adv, _ = tf.while_loop(
            lambda i, _, done: (i < n_targets * restarts) & tf.reduce_any(~done),
            body,
            (tf.constant(0), x, done),
        )
        return x_adv
