"""Sparsity statistics (SPEC §4), pure functions of a model's weights.

*Weight sparsity* is the fraction of exactly-zero entries among prunable kernels
(conv and dense kernels; biases, BN parameters and noise scales excluded), per layer
and overall (zeros of all kernels / entries of all kernels).
"""

import numpy as np

from tfsparse.sparsity.prune import PruneLowMagnitude
from tfsparse.sparsity.prune import prunable_layers
from tfsparse.sparsity.prune import prunable_weights


def weight_sparsity(model):
    """Per-layer and overall fraction of exact zeros in the prunable kernels.

    For a model still wrapped for pruning the kernel is read through its mask, so the
    figure is what ``strip`` will produce.

    Returns:
      ``{"overall": float, "zeros": int, "size": int,
         "layers": {name: {"zeros": int, "size": int, "sparsity": float}}}``
    """
    layers = {}
    for layer in prunable_layers(model):
        kernel = np.asarray(prunable_weights(layer)[0].numpy())
        if isinstance(layer, PruneLowMagnitude):
            kernel = kernel * np.asarray(layer.pruning_vars[0][1].numpy())
            name = layer.layer.name
        else:
            name = layer.name
        zeros = int(np.count_nonzero(kernel == 0))
        layers[name] = {"zeros": zeros, "size": int(kernel.size), "sparsity": zeros / kernel.size}
    zeros = sum(v["zeros"] for v in layers.values())
    size = sum(v["size"] for v in layers.values())
    return {"overall": zeros / size if size else 0.0, "zeros": zeros, "size": size, "layers": layers}


def format_sparsity_table(stats):
    """A plain-text per-layer table of ``weight_sparsity`` output."""
    rows = [f"{'layer':<24}{'size':>12}{'zeros':>12}{'sparsity':>10}"]
    for name, v in stats["layers"].items():
        rows.append(f"{name:<24}{v['size']:>12}{v['zeros']:>12}{v['sparsity']:>10.4f}")
    rows.append(f"{'overall':<24}{stats['size']:>12}{stats['zeros']:>12}{stats['overall']:>10.4f}")
    return "\n".join(rows)
