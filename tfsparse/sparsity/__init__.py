"""Pruning and sparsity (SPEC §4). The only tfsparse package that imports tfmot.

The public names are ``__all__``, one name per thing, grouped below; the modules that
implement them are private (``_oneshot``, ``_lottery``, ...), so ``dir(sparsity)`` shows
the API and nothing twice (a module ``oneshot`` beside the function ``one_shot`` was).

* Wrapping (tfmot): ``prune``, ``UpdatePruningStep`` (fit with it), ``apply_masks``,
  ``strip`` / ``plain``, ``scope`` (load a model saved wrapped), the tfmot schedules, and
  what a model holds: ``has_pruning_wrappers``, ``prunable_layers``, ``prunable_weights``,
  ``kernels``, ``masks``, ``copy_model``.
* Methods: ``prune_with(method, ...)`` over ``METHODS`` (GUP, LUP, filter pruning, network
  slimming, threshold γ), progressive pruning (Guo et al.), lottery tickets and inverse
  weights inheritance (Wang et al.), re-initialisation.
* Measures: weight sparsity and its table, norms, histograms, activation sparsity,
  structure reduction.
"""

from tfsparse.sparsity._activations import activation_sparsity
from tfsparse.sparsity._activations import activation_tensor
from tfsparse.sparsity._lottery import inverse_weights_inheritance
from tfsparse.sparsity._lottery import lottery_ticket
from tfsparse.sparsity._lottery import random_masks
from tfsparse.sparsity._lottery import start_model
from tfsparse.sparsity._methods import METHODS
from tfsparse.sparsity._methods import prune_with
from tfsparse.sparsity._oneshot import LAYER_TYPES
from tfsparse.sparsity._oneshot import gamma_for_sparsity
from tfsparse.sparsity._oneshot import global_sparsity_targets
from tfsparse.sparsity._oneshot import gup
from tfsparse.sparsity._oneshot import kernels
from tfsparse.sparsity._oneshot import lup
from tfsparse.sparsity._oneshot import one_shot
from tfsparse.sparsity._oneshot import threshold_prune
from tfsparse.sparsity._oneshot import wrap_with_masks
from tfsparse.sparsity._progressive import progressive_prune
from tfsparse.sparsity._progressive import progressive_targets
from tfsparse.sparsity._reinit import reinitialize
from tfsparse.sparsity._stats import format_sparsity_table
from tfsparse.sparsity._stats import norm_products
from tfsparse.sparsity._stats import weight_histogram_data
from tfsparse.sparsity._stats import weight_norms
from tfsparse.sparsity._stats import weight_sparsity
from tfsparse.sparsity._structured import bn_gamma_l1
from tfsparse.sparsity._structured import filter_prune
from tfsparse.sparsity._structured import network_slim
from tfsparse.sparsity._structured import structure_reduction
from tfsparse.sparsity._structured import structure_summary
from tfsparse.sparsity.prune import ConstantSparsity
from tfsparse.sparsity.prune import PolynomialDecay
from tfsparse.sparsity.prune import UpdatePruningStep
from tfsparse.sparsity.prune import apply_masks
from tfsparse.sparsity.prune import copy_model
from tfsparse.sparsity.prune import has_pruning_wrappers
from tfsparse.sparsity.prune import masks
from tfsparse.sparsity.prune import plain
from tfsparse.sparsity.prune import prunable_layers
from tfsparse.sparsity.prune import prunable_weights
from tfsparse.sparsity.prune import prune
from tfsparse.sparsity.prune import scope
from tfsparse.sparsity.prune import strip

__all__ = [
    # wrapping (tfmot)
    "prune", "UpdatePruningStep", "apply_masks", "strip", "plain", "scope",
    "ConstantSparsity", "PolynomialDecay",
    "has_pruning_wrappers", "prunable_layers", "prunable_weights", "kernels", "masks", "copy_model",
    # methods
    "METHODS", "LAYER_TYPES", "prune_with",
    "gup", "lup", "one_shot", "global_sparsity_targets", "threshold_prune", "gamma_for_sparsity",
    "wrap_with_masks", "progressive_prune", "progressive_targets",
    "filter_prune", "network_slim", "bn_gamma_l1",
    "lottery_ticket", "random_masks", "start_model", "inverse_weights_inheritance", "reinitialize",
    # measures
    "weight_sparsity", "format_sparsity_table", "weight_norms", "norm_products", "weight_histogram_data",
    "activation_sparsity", "activation_tensor", "structure_summary", "structure_reduction",
]
