"""RSR's ensemble loss and lasso weight penalty (Rakin et al. 2019, eq. 5–6).

    L = a · CE(f(x), y) + (1 − a) · CE(f(x_adv), y) + λ · Σ_l ‖W_l‖₁

``a`` balances clean and adversarial cross-entropy (RSR: 0.5; Madry's PGD training is
``a = 0``); the sum runs over the prunable kernels only (conv and dense ``W_l``, as in
RSR §3.3), never over biases, batch-normalisation parameters or the noise scales α of
CNI layers. λ = 5e-5 for ResNet-20 and 1e-5 for ResNet-18 / VGG-16 (RSR §4.1).

:class:`~tfsparse.training.adversarial.AdversarialModel` evaluates the two cross-entropy
terms in one forward pass over ``concat([x, x_adv])`` with the per-sample weights of
:func:`ensemble_sample_weights`, so the Keras ``compute_loss`` (and its distribution
scaling) computes exactly eq. 5; the lasso term enters as a model loss
(:func:`add_lasso`).
"""

from tfsparse.compat import tf
from tfsparse.sparsity import prunable_layers
from tfsparse.sparsity import prunable_weights


def check_clean_weight(a):
    """Returns ``float(a)`` if ``0 <= a <= 1``, else raises ValueError."""
    if not 0.0 <= float(a) <= 1.0:
        raise ValueError(f"clean_weight (RSR's a) must be in [0, 1], got {a!r}")
    return float(a)


def ensemble_sample_weights(sample_weight, a):
    """Per-sample weights that turn the mean over ``[clean; adv]`` into RSR eq. 5.

    The mean over ``2B`` samples of ``w_i · CE_i`` with ``w = 2a`` on the clean half and
    ``w = 2(1 − a)`` on the adversarial half equals ``a · mean(CE_clean) + (1 − a) ·
    mean(CE_adv)``.

    Args:
      sample_weight: ``(B,)`` weights of the batch, or None for ones.
      a: clean weight in [0, 1].

    Returns:
      ``(2B,)`` float32 weights (clean half first).
    """
    a = check_clean_weight(a)
    sample_weight = tf.cast(sample_weight, tf.float32)
    return tf.concat([2.0 * a * sample_weight, 2.0 * (1.0 - a) * sample_weight], axis=0)


def ensemble_loss(clean_logits, adv_logits, y, a=0.5):
    """RSR eq. 5 for multi-class logits: ``a·CE(clean) + (1 − a)·CE(adv)`` (batch means).

    Args:
      clean_logits, adv_logits: ``(B, C)`` logits on the clean and adversarial inputs.
      y: ``(B,)`` integer labels.
      a: clean weight in [0, 1] (RSR default 0.5).

    Returns:
      A scalar tensor.
    """
    a = check_clean_weight(a)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits
    y = tf.cast(y, tf.int32)
    return a * tf.reduce_mean(ce(labels=y, logits=clean_logits)) + (1.0 - a) * tf.reduce_mean(
        ce(labels=y, logits=adv_logits)
    )


def lasso_penalty(model):
    """``Σ_l ‖W_l‖₁`` over the prunable kernels of ``model`` (RSR eq. 6), a scalar tensor.

    Noise scales α, biases and BN parameters are not prunable kernels and never enter.
    """
    kernels = [prunable_weights(layer)[0] for layer in prunable_layers(model)]
    if not kernels:
        raise ValueError("lasso_penalty: the model has no prunable conv/dense kernels")
    return tf.add_n([tf.reduce_sum(tf.abs(k)) for k in kernels])


def add_lasso(model, lam):
    """Adds ``λ · Σ_l ‖W_l‖₁`` (RSR eq. 6) to ``model.losses``.

    Args:
      model: a built Keras model (pruning wrappers allowed; the penalty reads the
        wrapped kernels).
      lam: λ ≥ 0; 0 adds nothing.

    Raises:
      ValueError: if ``lam`` < 0 or the model has no prunable kernels.
    """
    if not float(lam) >= 0:
        raise ValueError(f"lasso λ must be >= 0, got {lam!r}")
    if lam == 0:
        return
    lasso_penalty(model)
    model.add_loss(lambda: float(lam) * lasso_penalty(model))
