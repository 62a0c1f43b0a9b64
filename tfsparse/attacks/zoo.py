"""ZOO-ADAM, the zeroth-order black-box attack of Chen, Zhang, Sharma, Yi, Hsieh, AISec 2017.

Only model outputs are used: the gradient of the C&W-style objective is estimated coordinate by
coordinate with symmetric finite differences (eq. 6), ``ĝ_i = (f(x + h·e_i) − f(x − h·e_i)) / 2h``,
on a random batch of coordinates per iteration, and those coordinates take a per-coordinate Adam
step (Alg. 2). RSR (Rakin et al. 2019) uses ZOO as its black-box check.
"""

import numbers

from tfsparse.attacks import lp
from tfsparse.attacks.base import Attack
from tfsparse.attacks.carlini_wagner import adam_update
from tfsparse.attacks.carlini_wagner import logit_margin
from tfsparse.compat import tf


def coordinate_gradients(objective, x, coords, h):
    """Symmetric finite-difference estimates of ``∂objective/∂x_i`` (Chen et al. 2017 eq. 6).

    All ``2·k`` evaluations of every sample go through ``objective`` as one batch.

    Args:
      objective: ``(n, d) -> (n,)``, evaluated on flat inputs (``n`` = batch · 2k).
      x: flat inputs ``(batch, d)``.
      coords: int coordinates ``(batch, k)``.
      h: finite-difference step.

    Returns:
      ``(batch, k)`` estimates; ``2·k`` queries per sample.
    """
    d = tf.shape(x)[1]
    k = tf.shape(coords)[1]
    offsets = h * tf.one_hot(coords, d, dtype=x.dtype)  # (batch, k, d)
    probes = tf.concat([x[:, None] + offsets, x[:, None] - offsets], axis=1)  # (batch, 2k, d)
    values = tf.reshape(objective(tf.reshape(probes, [-1, d])), [-1, 2 * k])
    return (values[:, :k] - values[:, k:]) / (2.0 * h)


class ZOO(Attack):
    """Untargeted ZOO-ADAM in l2 with a fixed query budget (Chen et al. 2017, Alg. 2).

    Objective (eq. 4 with the untargeted loss of eq. 5): ``‖x' − x‖₂² + c · max(Z_y − max_{i≠y}
    Z_i, −κ)``; the margin on logits equals the paper's on log-probabilities. Each iteration draws
    ``coords`` distinct coordinates per sample (stateless seed), estimates their derivatives with
    :func:`coordinate_gradients` and updates them with Adam (per-coordinate step counts), clipping
    to [0, 1] (the paper's projection, no tanh). Each sample keeps its smallest-l2 misclassified
    iterate; a sample never misclassified is returned unchanged. Every sample costs exactly
    :attr:`queries_per_sample` model evaluations (per iteration 2 · coords probes and one check of
    the new iterate, plus the clean and the final evaluation), reported in
    :attr:`AttackResult.queries`.

    ``h`` defaults to 1e-3 rather than the paper's 1e-4: in float32 the difference of two losses
    of order 10 carries ~1e-6 of rounding, so 1e-4 leaves ~1 % noise in each estimate.

    Example::

        result = ZOO(max_queries=20_000).run(model, x_test[:10], y_test[:10])
        print(result.success_rate, result.queries[0])

    Args:
      const: ``c`` (> 0) weighting the misclassification term.
      confidence: κ ≥ 0.
      learning_rate: Adam step size (> 0; the paper's η = 0.01).
      coords: coordinates estimated per iteration (≥ 1; the paper's batch of 128).
      max_queries: query budget per sample (≥ 2·coords + 3); the part not divisible into whole
        iterations is left unused.
      h: finite-difference step (> 0).
      jit_compile: ``True``, ``False`` or ``"auto"`` (XLA on GPU only).

    Raises:
      ValueError: on a parameter outside the ranges above.
    """

    name = "zoo"

    def __init__(
        self,
        *,
        const=10.0,
        confidence=0.0,
        learning_rate=0.01,
        coords=128,
        max_queries=20_000,
        h=1e-3,
        jit_compile="auto",
    ):
        for key, value, strict in (
            ("const", const, True),
            ("confidence", confidence, False),
            ("learning_rate", learning_rate, True),
            ("h", h, True),
        ):
            if not (isinstance(value, numbers.Real) and (value > 0 if strict else value >= 0)):
                raise ValueError(f"{key} must be a number {'>' if strict else '>='} 0, got {value!r}")
        if not (isinstance(coords, numbers.Integral) and coords >= 1):
            raise ValueError(f"coords must be an integer >= 1, got {coords!r}")
        if not (isinstance(max_queries, numbers.Integral) and max_queries >= 2 * coords + 3):
            raise ValueError(
                f"max_queries must be an integer >= 2 * coords + 3 = {2 * coords + 3}, "
                f"got {max_queries!r}"
            )
        super().__init__(
            const=float(const),
            confidence=float(confidence),
            learning_rate=float(learning_rate),
            coords=int(coords),
            max_queries=int(max_queries),
            h=float(h),
            jit_compile=jit_compile,
        )

    @property
    def iterations(self) -> int:
        """Coordinate-Adam iterations the budget pays for."""
        return (self.max_queries - 2) // (2 * self.coords + 1)

    @property
    def queries_per_sample(self) -> int:
        """Model evaluations per sample: per iteration two per coordinate and one of the new
        iterate (success check), plus the clean and the final evaluation."""
        return self.iterations * (2 * self.coords + 1) + 2

    def _attack_batch(self, model, x, y, seed_pair):
        result = super()._attack_batch(model, x, y, seed_pair)
        return result.with_queries(self.queries_per_sample)

    def _attack(self, model_fn, x, y, logits, seed):
        shape = tf.shape(x)
        x0 = tf.reshape(x, [shape[0], -1])
        d = tf.shape(x0)[1]
        k = self.coords
        values = x.shape[1:].num_elements()
        if values is not None and values < k:
            raise ValueError(f"coords={k} exceeds the {values} values of one input")
        kappa = self.confidence

        def objective(x_flat, x_ref, labels):
            z = model_fn(tf.reshape(x_flat, tf.concat([[-1], shape[1:]], 0)))
            dist = tf.reduce_sum(tf.square(x_flat - x_ref), axis=1)
            margin = logit_margin(z, labels)
            return dist + self.const * tf.maximum(margin, -kappa), dist, margin

        repeats = 2 * k

        def probe_objective(flat):
            # Probes come grouped per sample, 2k of each: repeat the references to match.
            x_ref = tf.repeat(x0, repeats, axis=0)
            return objective(flat, x_ref, tf.repeat(y, repeats))[0]

        def body(i, x_cur, m, v, t, best_l2, best_x):
            keys = tf.random.stateless_uniform(
                tf.shape(x0), tf.random.experimental.stateless_fold_in(seed, i)
            )
            coords = tf.math.top_k(keys, k).indices  # k distinct random coordinates per sample
            grads = coordinate_gradients(probe_objective, x_cur, coords, self.h)
            mask = tf.reduce_sum(tf.one_hot(coords, d, dtype=x.dtype), axis=1)
            grad = tf.reduce_sum(tf.one_hot(coords, d, dtype=x.dtype) * grads[..., None], axis=1)
            t = t + mask
            stepped, m_new, v_new = adam_update(
                x_cur, grad, m, v, tf.maximum(t, 1.0), self.learning_rate
            )
            chosen = mask > 0
            x_cur = tf.where(chosen, lp.clip_to_box(stepped), x_cur)
            m = tf.where(chosen, m_new, m)
            v = tf.where(chosen, v_new, v)
            _, dist, margin = objective(x_cur, x0, y)
            adversarial = margin < -kappa if kappa > 0 else margin < 0
            improved = adversarial & (dist < best_l2)
            best_l2 = tf.where(improved, dist, best_l2)
            best_x = tf.where(improved[:, None], x_cur, best_x)
            return i + 1, x_cur, m, v, t, best_l2, best_x

        zeros = tf.zeros_like(x0)
        state = (
            tf.constant(0),
            x0,
            zeros,
            zeros,
            zeros,
            tf.fill(shape[:1], float("inf")),
            x0,
        )
        best_x = tf.while_loop(lambda i, *_: i < self.iterations, body, state)[6]
        return tf.reshape(best_x, shape)
