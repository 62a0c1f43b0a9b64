"""Structured pruning: filter pruning and network slimming (Wang et al. 2020, Table 1).

Both methods remove whole output channels (conv filters, or dense units) and
rebuild a *physically narrower* functional model, unlike the zero masks of
unstructured pruning: filter pruning (FP, Li et al. 2017) and network slimming (NS,
Liu et al. 2017), described with their rules in :mod:`.plans`.

The per-layer kept channels are exposed as a *plan* (``{layer_name: kept indices}``),
so a structure can be inspected, stored, or re-applied: ``filter_prune`` is
``remove_channels(model, filter_prune_plan(...))`` and ``network_slim`` is
``remove_channels(model, slimming_plan(...))``.

Modules, each importing only those listed before it:

* ``routes``: which layers' channels can be removed (a route of channel-wise layers
  ending in one Conv2D/Dense; in a ResNet only the first conv of each block).
* ``plans``: ``filter_prune_plan``, ``slimming_plan`` and the γ penalty ``bn_gamma_l1``.
* ``rebuild``: ``remove_channels`` (narrower clone, sliced weights; exact before
  retraining), ``filter_prune``, ``network_slim``.
* ``summary``: ``structure_summary`` and ``structure_reduction`` (channels, params, FLOPs).
"""

from tfsparse.sparsity._structured.plans import bn_gamma_l1
from tfsparse.sparsity._structured.plans import filter_prune_plan
from tfsparse.sparsity._structured.plans import slimming_plan
from tfsparse.sparsity._structured.rebuild import filter_prune
from tfsparse.sparsity._structured.rebuild import network_slim
from tfsparse.sparsity._structured.rebuild import remove_channels
from tfsparse.sparsity._structured.routes import removable_layers
from tfsparse.sparsity._structured.summary import structure_reduction
from tfsparse.sparsity._structured.summary import structure_summary

__all__ = [
    "bn_gamma_l1",
    "filter_prune",
    "filter_prune_plan",
    "network_slim",
    "remove_channels",
    "removable_layers",
    "slimming_plan",
    "structure_reduction",
    "structure_summary",
]
