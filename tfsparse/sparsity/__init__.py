"""Pruning and sparsity (SPEC §4). The only tfsparse package that imports tfmot."""

from tfsparse.sparsity.progressive import progressive_prune
from tfsparse.sparsity.progressive import progressive_targets
from tfsparse.sparsity.prune import UpdatePruningStep
from tfsparse.sparsity.prune import apply_masks
from tfsparse.sparsity.prune import copy_model
from tfsparse.sparsity.prune import has_pruning_wrappers
from tfsparse.sparsity.prune import masks
from tfsparse.sparsity.prune import one_shot_schedule
from tfsparse.sparsity.prune import prunable_layers
from tfsparse.sparsity.prune import prunable_weights
from tfsparse.sparsity.prune import prune
from tfsparse.sparsity.prune import scope
from tfsparse.sparsity.prune import strip
from tfsparse.sparsity.stats import format_sparsity_table
from tfsparse.sparsity.stats import weight_sparsity
