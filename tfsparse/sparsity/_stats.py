"""Sparsity statistics (SPEC §4), pure functions of a model's weights.

*Weight sparsity* is the fraction of exactly-zero entries among prunable kernels
(conv and dense kernels; biases, BN parameters and noise scales excluded), per layer
and overall (zeros of all kernels / entries of all kernels). *Weight-distribution
sparsity* (Wang et al. 2020): L_p norms (p = 0, 1, 2) of each kernel, their products
over layers (the quantities of Wang Thm 2 and Guo Lemma 3.1), and histograms of the
non-zero weights (Wang Fig. 2–4, RSR Fig. 1).
"""

import math

import numpy as np

from tfsparse.sparsity._oneshot import kernels
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


def weight_norms(model):
    """L0, L1 and L2 norms of each prunable kernel (entry-wise, the kernel as one vector).

    L0 is the number of non-zero entries, L1 = Σ|w|, L2 = (Σ w²)^½. Kernels of wrapped
    models are read through their masks.

    Returns:
      ``{layer_name: {"l0": int, "l1": float, "l2": float}}`` in model order.
    """
    result = {}
    for name, kernel in kernels(model).items():
        flat = kernel.astype(np.float64).ravel()
        result[name] = {
            "l0": int(np.count_nonzero(flat)),
            "l1": float(np.abs(flat).sum()),
            "l2": float(np.sqrt(np.square(flat).sum())),
        }
    return result


def norm_products(model):
    """Products over layers of the kernels' L1 and L2 norms (Wang Thm 2, Guo Lemma 3.1 style).

    Products of many norms overflow or underflow quickly, so their natural logarithms
    (sums of log-norms) are returned too; a zero kernel gives a product 0 and log −inf.

    Returns:
      ``{"l1": float, "l2": float, "log_l1": float, "log_l2": float}``.
    """
    norms = weight_norms(model).values()
    result = {}
    for p in ("l1", "l2"):
        values = [v[p] for v in norms]
        result[p] = float(np.prod(values))
        result[f"log_{p}"] = float(sum(math.log(v) if v > 0 else -math.inf for v in values))
    return result


def weight_histogram_data(model, layer=None, bins=50, nonzero_only=True):
    """Histogram of the kernel weights of one layer or of all prunable layers pooled.

    Args:
      model: a model, or a ``{layer_name: ndarray}`` dict of kernels (e.g. read back
        from a results file).
      layer: a layer name, or None for all kernels together.
      bins: number of equal-width bins (or explicit edges, as for ``np.histogram``).
      nonzero_only: leave exact zeros out (Wang Fig. 2–4 and RSR Fig. 1 show the
        surviving weights); their count is reported as ``zeros``.

    Returns:
      ``{"counts": int ndarray, "edges": float ndarray, "zeros": int, "size": int}``.

    Raises:
      ValueError: if ``layer`` is not a prunable layer.
    """
    weights = model if isinstance(model, dict) else kernels(model)
    if layer is not None and layer not in weights:
        raise ValueError(
            f"weight_histogram_data: no prunable layer {layer!r}; choose from {list(weights)}"
        )
    chosen = [weights[layer]] if layer is not None else list(weights.values())
    flat = np.concatenate([np.asarray(k, dtype=np.float64).ravel() for k in chosen])
    zeros = int(np.count_nonzero(flat == 0))
    values = flat[flat != 0] if nonzero_only else flat
    counts, edges = np.histogram(values, bins=bins)
    return {"counts": counts, "edges": edges, "zeros": zeros, "size": int(flat.size)}
