"""One entry point for every one-shot pruning method, by name (the CLI and pipelines use it)."""

from tfsparse.sparsity import _oneshot as oneshot
from tfsparse.sparsity._structured import filter_prune
from tfsparse.sparsity._structured import network_slim

METHODS = ("gup", "lup", "fp", "ns", "threshold")


def prune_with(method, model, sparsity, *, keep_dense=(), layer_types=("conv", "dense"),
               gamma=None, ns_max_per_layer=0.9):
    """The model to retrain after pruning ``model`` once with ``method``.

    * ``gup`` / ``lup``: tfmot-wrapped copies (Wang et al.): global / per-layer magnitude
      masks, set at the first training step and held while retraining.
    * ``threshold``: |w| < γ → 0 (RSR §3.4), γ given or chosen for ``sparsity``; the
      zeros are held by fixed masks while retraining.
    * ``fp`` / ``ns``: physically narrower plain models (Li et al. 2017 filter pruning by
      L1 norm with ratio ``sparsity`` per layer; Liu et al. 2017 network slimming with a
      global BN-γ ratio ``sparsity``).

    Raises:
      ValueError: for an unknown method or a bad argument of the method.
    """
    if method == "gup":
        return oneshot.gup(model, sparsity, keep_dense=keep_dense, layer_types=layer_types)
    if method == "lup":
        return oneshot.lup(model, sparsity, keep_dense=keep_dense, layer_types=layer_types)
    if method == "threshold":
        if gamma is None:
            gamma = oneshot.gamma_for_sparsity(model, sparsity, keep_dense=keep_dense, layer_types=layer_types)
        kept = oneshot.threshold_masks(model, gamma, keep_dense=keep_dense, layer_types=layer_types)
        return oneshot.wrap_with_masks(oneshot.threshold_prune(model, gamma, keep_dense=keep_dense,
                                                               layer_types=layer_types), kept)
    if method == "fp":
        return filter_prune(model, sparsity)
    if method == "ns":
        return network_slim(model, sparsity, max_per_layer=ns_max_per_layer)
    raise ValueError(f"method {method!r} is unknown; choose from {METHODS}")
