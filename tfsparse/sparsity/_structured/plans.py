"""Plans: which output channels each layer keeps, for filter pruning and network slimming.

A *plan* is ``{layer_name: kept output indices}`` for removable layers (see ``routes``);
``rebuild.remove_channels`` turns it into a physically narrower model. The plans of
Wang et al. 2020 (Table 1):

* **Filter pruning (FP)**, Li et al. 2017, "Pruning Filters for Efficient ConvNets":
  in each chosen layer remove the ``round(ratio · filters)`` filters whose kernels have
  the smallest L1 norm Σ|W[..., j]| (layer-wise, a *predefined* structure).
* **Network slimming (NS)**, Liu et al. 2017, "Learning Efficient Convolutional
  Networks through Network Slimming": train with λ·Σ|γ| on the batch-normalisation
  scales (``bn_gamma_l1``), then rank every prunable BN channel *globally* by |γ| and
  remove the smallest fraction (an *automatic* structure), with a per-layer cap so that
  no layer vanishes (Wang et al.: "the highest pruning ratio is selected ... to avoid
  the removal of layers").
"""

import math

import numpy as np

from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.sparsity.prune import resolve_keep_dense
from tfsparse.sparsity._structured.routes import _check_removable
from tfsparse.sparsity._structured.routes import _functional
from tfsparse.sparsity._structured.routes import _leaf_layers
from tfsparse.sparsity._structured.routes import _routes


def filter_prune_plan(model, ratio, *, layers=None, keep=("last",)):
    """Kept filters per layer for filter pruning by kernel L1 norm (Li et al. 2017).

    In each chosen layer the ``round(ratio · n)`` output filters (dense: units) with the
    smallest L1 norm of their kernel slice ``W[..., j]`` are removed; ties go to the
    lower index. Biases are not part of the norm, as in Li et al. §3.1.

    Args:
      model: the trained wide model (functional or sequential, no pruning wrappers).
      ratio: fraction of filters removed in every chosen layer, in [0, 1); rounded half
        up per layer.
      layers: names of the layers to prune. Default: every removable Conv2D (see
        ``removable_layers``); for a model without removable convs (an MLP such as
        ``lenet300_100``) every removable Dense layer, its units taken as "filters".
      keep: layer names, or "first"/"last" (the model's first/last prunable layer, as
        in ``prune(keep_dense=...)``), left unpruned. The classifier is never pruned.

    Returns:
      ``{layer_name: int ndarray}`` of the kept output indices, sorted, for each
      chosen layer.

    Raises:
      ValueError: if ``ratio`` is outside [0, 1), a name is unknown or not removable,
        or the ratio would remove every filter of a layer.
    """
    _check_ratio(ratio)
    model = _functional(model)
    routes, blocked = _routes(model)
    excluded = resolve_keep_dense(model, keep)
    if layers is None:
        convs = [n for n in routes if isinstance(model.get_layer(n), keras.layers.Conv2D)]
        chosen = convs or list(routes)
    else:
        chosen = list(layers)
        for name in chosen:
            _check_removable(model, routes, blocked, name)
    plan = {}
    for name in chosen:
        if name in excluded:
            continue
        kernel = model.get_layer(name).get_weights()[0]
        norms = np.abs(kernel).sum(axis=tuple(range(kernel.ndim - 1)))
        remove = _rounded(ratio * norms.size)
        if remove >= norms.size:
            raise ValueError(
                f"filter_prune: ratio {ratio} would remove all {norms.size} filters of "
                f"{name!r}; use a smaller ratio"
            )
        removed = np.argsort(norms, kind="stable")[:remove]
        plan[name] = np.setdiff1d(np.arange(norms.size), removed)
    return plan


def bn_gamma_l1(model, strength):
    """The network-slimming sparsity penalty λ·Σ|γ| over all BN scales (Liu et al. 2017, eq. 1).

    The sum runs over every channel of every ``BatchNormalization`` layer with a scale
    (nested models included) and is not divided by the batch size; λ is a
    hyper-parameter (Liu et al. 2017 use values of 1e-5 to 1e-4). Add it while training:

    >>> model.add_loss(bn_gamma_l1(model, 1e-4))

    Args:
      model: a model containing BatchNormalization layers.
      strength: λ >= 0.

    Returns:
      A zero-argument callable returning the penalty as a scalar tensor, differentiable
      with respect to every γ (subgradient 0 at γ = 0).

    Raises:
      ValueError: if ``strength`` < 0 or ``model`` has no BN scale.
    """
    if not float(strength) >= 0:
        raise ValueError(f"bn_gamma_l1: strength must be >= 0, got {strength}")
    gammas = [layer.gamma for layer in _leaf_layers(model)
              if isinstance(layer, keras.layers.BatchNormalization) and layer.scale]
    if not gammas:
        raise ValueError(f"bn_gamma_l1: model {model.name!r} has no BatchNormalization scale γ")
    strength = float(strength)

    def penalty():
        return strength * tf.add_n([tf.reduce_sum(tf.abs(gamma)) for gamma in gammas])

    return penalty


def slimming_plan(model, ratio, *, max_per_layer=0.9):
    """Kept channels per layer for network slimming by global |γ| ranking (Liu et al. 2017).

    All channels of the prunable BNs (the first BN on each removable route, see
    ``routes``) are ranked together by |γ|; the ``round(ratio · total)`` smallest
    are removed, skipping a channel when its layer has already lost
    ``min(floor(max_per_layer · C), C − 1)`` channels, so no layer vanishes. The plan is
    keyed by the layer feeding the BN (the conv whose filters go).

    Args:
      model: wide model trained with ``bn_gamma_l1`` (no pruning wrappers).
      ratio: global fraction of prunable BN channels removed, in [0, 1).
      max_per_layer: the largest fraction of one layer's channels that may go, in (0, 1].

    Returns:
      ``{layer_name: int ndarray}`` of kept output indices, sorted, for every layer
      feeding a prunable BN.

    Raises:
      ValueError: on a bad ``ratio`` or ``max_per_layer``, a model without any
        BatchNormalization layer (the message names the alternatives), a model without
        prunable BNs, or a ratio the per-layer cap makes unreachable (the message gives
        the largest reachable ratio).
    """
    _check_ratio(ratio)
    if not 0.0 < float(max_per_layer) <= 1.0:
        raise ValueError(f"network_slim: max_per_layer must be in (0, 1], got {max_per_layer}")
    model = _functional(model)
    routes, _ = _routes(model)
    gammas = {}
    for name, route in routes.items():
        scaled = [bn for bn, positions in route.bns
                  if positions == 1 and model.get_layer(bn).scale]
        if scaled:
            gammas[name] = np.abs(model.get_layer(scaled[0]).gamma.numpy())
    if not gammas:
        if not any(isinstance(layer, keras.layers.BatchNormalization)
                   for layer in _leaf_layers(model)):
            raise ValueError(
                f"network slimming (ns) ranks channels by BatchNorm γ, but model "
                f"{model.name!r} has no BatchNormalization layer; use a model with BN "
                f"(e.g. lenet5_bn) or another method (gup, lup, fp)"
            )
        raise ValueError(
            f"network_slim: model {model.name!r} has no BatchNormalization after a removable layer"
        )
    caps = {name: min(int(math.floor(max_per_layer * g.size)), g.size - 1)
            for name, g in gammas.items()}
    total = sum(g.size for g in gammas.values())
    target = _rounded(ratio * total)
    reachable = sum(caps.values())
    if target > reachable:
        raise ValueError(
            f"network_slim: ratio {ratio} removes {target} of {total} channels, but "
            f"max_per_layer={max_per_layer} allows at most {reachable} "
            f"(ratio <= {reachable / total:.4f})"
        )
    names = list(gammas)
    values = np.concatenate([gammas[n] for n in names])
    owner = np.concatenate([np.full(gammas[n].size, i) for i, n in enumerate(names)])
    channel = np.concatenate([np.arange(gammas[n].size) for n in names])
    removed, count = {name: [] for name in names}, 0
    for index in np.argsort(values, kind="stable"):
        if count == target:
            break
        name = names[owner[index]]
        if len(removed[name]) < caps[name]:
            removed[name].append(channel[index])
            count += 1
    return {name: np.setdiff1d(np.arange(gammas[name].size), removed[name]) for name in names}


def _rounded(value):
    # Half up (Python's round() is half-to-even); rounding to 9 digits first absorbs
    # float noise such as 0.3 * 10 = 3.0000000000000004.
    return int(math.floor(round(value, 9) + 0.5))


def _check_ratio(ratio):
    if not 0.0 <= float(ratio) < 1.0:
        raise ValueError(f"ratio must be in [0, 1), got {ratio}")
