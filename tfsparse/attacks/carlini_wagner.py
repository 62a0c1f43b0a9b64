"""Carlini & Wagner L2 attack, IEEE S&P 2017 (§V, eq. for f₆ with the tanh change of variables)."""

import numbers

from tfsparse.attacks import lp
from tfsparse.attacks.base import Attack
from tfsparse.attacks.base import is_binary
from tfsparse.compat import tf


def logit_margin(logits, y):
    """``Z_y − max_{i≠y} Z_i`` per sample (``s·z``, ``s = 2y − 1``, for a single binary logit).

    Positive while ``y`` is predicted; C&W's objective ``f₆`` is ``max(margin, −κ)`` and ZOO's
    (Chen et al. 2017 eq. 4) is the same on log-probabilities, which differ from logits by a
    per-sample constant.
    """
    if is_binary(logits):
        return (2.0 * tf.cast(y, logits.dtype) - 1.0) * logits[:, 0]
    own = tf.gather(logits, y, batch_dims=1)
    others = tf.where(tf.one_hot(y, tf.shape(logits)[-1]) > 0, -float("inf"), logits)
    return own - tf.reduce_max(others, axis=-1)


def adam_update(param, grad, m, v, t, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-8):
    """One Adam step (Kingma & Ba 2015, Alg. 1) on tensors; ``t`` is the step count after it.

    Returns:
      ``(param, m, v)`` updated.
    """
    m = beta1 * m + (1.0 - beta1) * grad
    v = beta2 * v + (1.0 - beta2) * tf.square(grad)
    m_hat = m / (1.0 - beta1**t)
    v_hat = v / (1.0 - beta2**t)
    return param - learning_rate * m_hat / (tf.sqrt(v_hat) + epsilon), m, v


class CarliniWagnerL2(Attack):
    """Minimal-l2 C&W attack: ``min ‖x' − x‖₂² + c·max(Z_y − max_{i≠y} Z_i, −κ)`` (untargeted).

    The box is removed by ``x' = (tanh(w) + 1) / 2``; ``w`` is optimised by Adam, restarting from
    ``w = atanh(2x − 1)`` at every binary-search step. The constant ``c`` is searched per sample:
    after a step that found an adversarial example ``c`` moves down (bisection between the bounds),
    otherwise up (×10 until an upper bound exists), as in Carlini & Wagner's reference code. Each
    sample keeps the smallest-l2 iterate that is misclassified with margin ``κ`` over all steps;
    a sample never misclassified is returned unchanged (a failure, norm 0). Early abort: a
    binary-search step stops when the batch objective has not decreased by 0.01 % over
    ``steps // 10`` iterations. The whole search (both loops, Adam included) runs in the one traced
    function of the base class.

    Example::

        result = CarliniWagnerL2().run(model, x_test[:100], y_test[:100])
        print(result.l2[result.success].mean())

    Args:
      confidence: κ ≥ 0, the margin by which the adversarial class must win.
      initial_const: starting ``c`` (> 0), the same for every sample.
      binary_search_steps: outer steps adapting ``c`` (≥ 1).
      steps: Adam iterations per binary-search step (≥ 1).
      learning_rate: Adam step size (> 0).
      abort_early: enable the early abort above.
      jit_compile: ``True``, ``False`` or ``"auto"`` (XLA on GPU only).

    Raises:
      ValueError: on a parameter outside the ranges above.
    """

    name = "cw_l2"

    def __init__(
        self,
        *,
        confidence=0.0,
        initial_const=1e-2,
        binary_search_steps=9,
        steps=1000,
        learning_rate=0.01,
        abort_early=True,
        jit_compile="auto",
    ):
        for key, value, low, strict in (
            ("confidence", confidence, 0, False),
            ("initial_const", initial_const, 0, True),
            ("learning_rate", learning_rate, 0, True),
        ):
            if not (isinstance(value, numbers.Real) and (value > low if strict else value >= low)):
                raise ValueError(f"{key} must be a number {'>' if strict else '>='} 0, got {value!r}")
        for key, value in (("binary_search_steps", binary_search_steps), ("steps", steps)):
            if not (isinstance(value, numbers.Integral) and value >= 1):
                raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
        if not isinstance(abort_early, bool):
            raise ValueError(f"abort_early must be True or False, got {abort_early!r}")
        super().__init__(
            confidence=float(confidence),
            initial_const=float(initial_const),
            binary_search_steps=int(binary_search_steps),
            steps=int(steps),
            learning_rate=float(learning_rate),
            abort_early=abort_early,
            jit_compile=jit_compile,
        )

    def _attack(self, model_fn, x, y, logits, seed):
        kappa = self.confidence
        axes = list(range(1, len(x.shape)))
        w_start = tf.atanh(tf.clip_by_value(2.0 * x - 1.0, -1.0 + 1e-6, 1.0 - 1e-6))
        check_every = max(self.steps // 10, 1)
        batch = tf.shape(x)[0]

        def to_image(w):
            return (tf.tanh(w) + 1.0) / 2.0

        def objective(w, const):
            x_new = to_image(w)
            z = model_fn(x_new)
            dist = tf.reduce_sum(tf.square(x_new - x), axis=axes)
            margin = logit_margin(z, y)
            per_sample = dist + const * tf.maximum(margin, -kappa)
            return tf.reduce_sum(per_sample), x_new, dist, margin

        def optimise(const, best_l2, best_x):
            def body(i, w, m, v, prev, stalled, found, best_l2, best_x):
                with tf.GradientTape() as tape:
                    tape.watch(w)
                    loss, x_new, dist, margin = objective(w, const)
                grad = tape.gradient(loss, w)
                # The iterate just evaluated: keep it where adversarial and closer than the best.
                adversarial = margin < -kappa if kappa > 0 else margin < 0
                improved = adversarial & (dist < best_l2)
                best_l2 = tf.where(improved, dist, best_l2)
                best_x = tf.where(lp.per_sample(improved, x), x_new, best_x)
                found = found | adversarial
                t = tf.cast(i + 1, x.dtype)
                w, m, v = adam_update(w, grad, m, v, t, self.learning_rate)
                if self.abort_early:
                    at_check = tf.equal((i + 1) % check_every, 0)
                    stalled = at_check & (loss > prev * 0.9999)
                    prev = tf.where(at_check, loss, prev)
                return i + 1, w, m, v, prev, stalled, found, best_l2, best_x

            zeros = tf.zeros_like(w_start)
            state = (
                tf.constant(0),
                w_start,
                zeros,
                zeros,
                tf.constant(float("inf")),
                tf.constant(False),
                tf.zeros([batch], tf.bool),
                best_l2,
                best_x,
            )
            out = tf.while_loop(
                lambda i, w, m, v, prev, stalled, *_: (i < self.steps) & ~stalled, body, state
            )
            return out[6], out[7], out[8]

        def search_step(step, const, lower, upper, best_l2, best_x):
            found, best_l2, best_x = optimise(const, best_l2, best_x)
            upper = tf.where(found, tf.minimum(upper, const), upper)
            lower = tf.where(found, lower, tf.maximum(lower, const))
            bounded = upper < 1e10
            const = tf.where(bounded, (lower + upper) / 2.0, const * 10.0)
            return step + 1, const, lower, upper, best_l2, best_x

        ones = tf.ones([batch], x.dtype)
        state = (
            tf.constant(0),
            ones * self.initial_const,
            ones * 0.0,
            ones * 1e10,
            ones * float("inf"),
            x,
        )
        return tf.while_loop(
            lambda step, *_: step < self.binary_search_steps, search_step, state
        )[5]
