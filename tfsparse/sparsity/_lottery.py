"""Adversarial lottery ticket and Inverse Weights Inheritance (Wang et al. 2020, Alg. 1 and 2).

The algorithm box of Alg. 1 is missing from the paper's text; SPEC §4 reconstructs it as:
start from the initial weights θ0 with the full mask M0; for k = 1..K, train N epochs
(adversarially in the paper, N = 1) with mask M(k−1) held, remove p·|θ| of the *original*
weight count globally by magnitude among the surviving weights → Mk, and rewind the
surviving weights to θ0. The ticket is θ0 ⊙ MK, to be trained with MK held
(Table 3: "60 (20×3 iter)"). After K iterations the sparsity is exactly K·p.

Alg. 2 (IWI) fine-tunes the ticket to θ′ ⊙ MK, loads it into the large network with the
pruned positions re-initialised from θ0, θ′ ⊙ MK + θ0 ⊙ (M0 − MK), and trains the
large dense network to convergence.
"""

import numpy as np

from tfsparse.compat import keras
from tfsparse.sparsity._oneshot import LAYER_TYPES
from tfsparse.sparsity._oneshot import kernels
from tfsparse.sparsity._oneshot import select_layers
from tfsparse.sparsity._oneshot import wrap_with_masks
from tfsparse.sparsity.prune import copy_model
from tfsparse.sparsity.prune import has_pruning_wrappers
from tfsparse.sparsity.prune import prunable_layers
from tfsparse.sparsity.prune import prunable_weights
from tfsparse.sparsity.prune import strip
from tfsparse.sparsity._reinit import reinitialize


# Seed offset of the re-initialised control of Table 3 (fresh weights ⊙ M_K).
REINIT_SEED_OFFSET = 1000

def lottery_ticket(
    model,
    *,
    iterations,
    prune_fraction,
    train,
    keep_dense=(),
    layer_types=LAYER_TYPES,
    on_iteration=None,
):
    """Finds an (adversarial) lottery ticket by iterative global pruning with rewinding.

    Wang et al. 2020, Alg. 1 as reconstructed in SPEC §4. Each iteration trains a copy
    of θ0 ⊙ M(k−1) with the mask held (tfmot wrappers that never recompute it), removes
    ``round(prune_fraction · N0)`` of the surviving selected weights with the smallest
    magnitude across all selected layers together (N0 = original weight count; ties
    broken by position, so the count is exact), and rewinds. Masks are nested:
    M0 ⊇ M1 ⊇ … ⊇ MK.

    Example::

        ticket, masks = lottery_ticket(model, iterations=3, prune_fraction=0.2,
                                       train=lambda m: adversarial_train(m, epochs=1))
        adversarial_train(ticket, epochs=60)   # mask held by the wrappers
        sparse = strip(ticket)

    Args:
      model: the freshly initialised model; its weights are θ0 (left unchanged).
      iterations: K ≥ 1.
      prune_fraction: p, fraction of the original selected weight count removed per
        iteration; K·p must be < 1.
      train: ``train(wrapped_model) -> None`` trains in place for N epochs, clean or
        adversarial (the caller decides), with tfmot's ``UpdatePruningStep`` callback
        (``tfsparse.training.train`` adds it).
      keep_dense: layer names (or "first"/"last") never pruned.
      layer_types: kernels taking part, subset of ``("conv", "dense")``.
      on_iteration: optional ``on_iteration(k, masks)`` called after each pruning step.

    Returns:
      ``(ticket, masks)``: ``ticket`` is a copy of the model holding θ0 ⊙ MK (biases and
      BN parameters rewound to θ0 as well), wrapped so that training keeps MK; ``strip``
      it after training. ``masks`` is ``{layer_name: bool ndarray}`` (True = kept) for the
      selected layers.

    Raises:
      ValueError: if ``iterations`` < 1, ``prune_fraction`` is not in (0, 1), K·p ≥ 1,
        or on a bad layer name/type.
    """
    if int(iterations) < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if not 0.0 < float(prune_fraction) < 1.0:
        raise ValueError(f"prune_fraction must be in (0, 1), got {prune_fraction}")
    if int(iterations) * float(prune_fraction) >= 1.0:
        raise ValueError(
            f"iterations * prune_fraction must be < 1 (p of the original count per iteration), "
            f"got {iterations} * {prune_fraction}"
        )
    theta0 = copy_model(model)
    names = select_layers(theta0, keep_dense=keep_dense, layer_types=layer_types)
    kept = {name: np.ones(k.shape, dtype=bool) for name, k in kernels(theta0, names).items()}
    remove = int(round(float(prune_fraction) * sum(mask.size for mask in kept.values())))
    for k in range(1, int(iterations) + 1):
        wrapped = wrap_with_masks(theta0, kept)
        train(wrapped)
        kept = prune_surviving(kernels(wrapped, names), kept, remove)
        if on_iteration is not None:
            on_iteration(k, kept)
    return wrap_with_masks(theta0, kept), kept


def prune_surviving(weights, kept, count):
    """Removes the ``count`` smallest-magnitude surviving weights, globally across layers.

    Args:
      weights: ``{layer_name: ndarray}`` trained kernels.
      kept: ``{layer_name: bool ndarray}`` current masks (same keys and shapes).
      count: number of surviving weights to remove.

    Returns:
      New masks ``{layer_name: bool ndarray}``, each a subset of the old one.

    Raises:
      ValueError: if ``count`` exceeds the number of surviving weights.
    """
    names = list(kept)
    surviving = np.concatenate([np.abs(weights[name])[kept[name]] for name in names])
    if count > surviving.size:
        raise ValueError(f"cannot remove {count} weights, only {surviving.size} survive")
    drop = np.zeros(surviving.size, dtype=bool)
    drop[np.argsort(surviving, kind="stable")[:count]] = True
    result, start = {}, 0
    for name in names:
        mask = kept[name].copy()
        size = int(mask.sum())
        mask[mask] = ~drop[start:start + size]
        result[name] = mask
        start += size
    return result


def random_masks(masks, seed):
    """Random masks at the ticket's sparsity: the control "random mask" row of Table 3.

    Each layer keeps exactly as many weights as in ``masks``, at positions drawn uniformly
    without replacement, so the layer-wise (and hence overall) sparsity equals the
    ticket's and only the *choice* of surviving weights differs (Frankle & Carbin 2019's
    random-pruning control, applied to Wang et al.'s adversarial tickets).

    Args:
      masks: ``{layer_name: bool ndarray}`` (True = kept), e.g. from :func:`lottery_ticket`.
      seed: integer seed (or sequence of ints) of ``numpy.random.default_rng``.

    Returns:
      ``{layer_name: bool ndarray}`` of the same shapes and per-layer kept counts.
    """
    rng = np.random.default_rng(seed)
    result = {}
    for name, mask in masks.items():
        mask = np.asarray(mask, dtype=bool)
        flat = np.zeros(mask.size, dtype=bool)
        flat[rng.choice(mask.size, int(mask.sum()), replace=False)] = True
        result[name] = flat.reshape(mask.shape)
    return result


def start_model(row, theta0, masks, seed):
    """The model a row of Wang et al. Table 3 trains, before training: wrapped so that its mask holds.

    Args:
      row: ``"ticket"`` (θ0 ⊙ M_K), ``"reinit"`` (fresh weights ⊙ M_K, drawn with seed
        ``1000 + seed`` from each layer's initializer; biases and BN re-drawn as well) or
        ``"random"`` (θ0 ⊙ a random mask with the ticket's per-layer kept counts, seed
        ``(seed, 2)``).
      theta0: the plain model at its initialisation θ0 (left unchanged).
      masks: M_K, ``{layer_name: bool ndarray}``.
      seed: the run's seed of this row.

    Returns:
      A copy wrapped by :func:`~tfsparse.sparsity.wrap_with_masks`.

    Raises:
      ValueError: for another row name.
    """
    if row == "ticket":
        return wrap_with_masks(theta0, masks)
    if row == "reinit":
        fresh = reinitialize(theta0, seed=REINIT_SEED_OFFSET + int(seed), keep_mask=False)
        return wrap_with_masks(fresh, masks)
    if row == "random":
        return wrap_with_masks(theta0, random_masks(masks, (int(seed), 2)))
    raise ValueError(f"start_model: unknown row {row!r}; choose from ticket, reinit, random")


def inverse_weights_inheritance(large_model_theta0, ticket_trained, masks):
    """Inverse Weights Inheritance (Wang et al. 2020, Alg. 2): θ′ ⊙ MK + θ0 ⊙ (M0 − MK).

    Kernels of the masked layers take the fine-tuned ticket's values on the mask and
    the large model's initial values θ0 elsewhere (the pruned positions re-initialised).
    Every other weight (biases, BN parameters and statistics, unmasked kernels) is
    inherited from the fine-tuned ticket. Layers are matched by name, so the ticket must
    come from the same architecture (as :func:`lottery_ticket` produces it).

    Args:
      large_model_theta0: the large model at its initialisation θ0 (left unchanged).
      ticket_trained: the fine-tuned ticket θ′ ⊙ MK, wrapped or stripped (unchanged).
      masks: ``{layer_name: bool ndarray}`` MK as returned by :func:`lottery_ticket`.

    Returns:
      A plain dense copy of the large model, ready to train.

    Raises:
      ValueError: if a layer with weights or a masked layer is missing from the ticket,
        or shapes differ.
    """
    ticket = ticket_trained
    if has_pruning_wrappers(ticket):
        ticket = strip(copy_model(ticket))
    large = copy_model(large_model_theta0)
    missing = set(masks) - {layer.name for layer in prunable_layers(large)}
    if missing:
        raise ValueError(
            f"inverse_weights_inheritance: masks name unknown layers {sorted(missing)}"
        )
    source = {layer.name: layer for layer in _weighted_layers(ticket)}
    for layer in _weighted_layers(large):
        if layer.name not in source:
            raise ValueError(f"inverse_weights_inheritance: the ticket has no layer {layer.name!r}")
        layer.set_weights(source[layer.name].get_weights())
    initial = {
        layer.name: prunable_weights(layer)[0].numpy()
        for layer in prunable_layers(large_model_theta0)
    }
    for layer in prunable_layers(large):
        if layer.name in masks:
            kernel = prunable_weights(layer)[0]
            mask = np.asarray(masks[layer.name], dtype=bool)
            if mask.shape != tuple(kernel.shape):
                raise ValueError(
                    f"mask of {layer.name!r} has shape {mask.shape}, kernel {tuple(kernel.shape)}"
                )
            kernel.assign(np.where(mask, kernel.numpy(), initial[layer.name]))
    return large


def _weighted_layers(model):
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(_weighted_layers(layer))
        elif layer.weights:
            found.append(layer)
    return found
