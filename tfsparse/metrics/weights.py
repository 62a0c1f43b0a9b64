"""What a (pruned) model's weights say of its robustness, for Wang et al. 2020 Tables 1–2 and Figs. 1–4.

:func:`weight_measures`: weight sparsity, the parameters and FLOPs structured pruning removed
against the dense reference, the Thm 2 bound (:func:`tfsparse.metrics.lipschitz_bound`: conv
layers by their operator norms; log10 of the largest class pair, l∞ and l2 perturbations), the
logs of the L0/L1/L2 norm products of the kernels (Fig. 1) and the histogram of the non-zero
kernel weights (Figs. 2–4).
"""

import math

import numpy as np

from tfsparse import sparsity
from tfsparse.metrics.lipschitz import lipschitz_bound


def weight_measures(model, reference, *, structured, bins, lipschitz_iterations, lipschitz_tol):
    """The weight columns of a Wang table row for ``model`` (``reference``: the dense model it was pruned from).

    Args:
      structured: True for a physically narrower model (FP, NS): ``params_reduction`` counts the
        parameters removed against ``reference``; otherwise (masks) it is the weight sparsity.
      bins: bins of the weight histogram; ``lipschitz_iterations`` / ``lipschitz_tol``: of the
        power iterations of the Thm 2 bound.

    Returns:
      ``{"sparsity", "params_reduction", "flops_reduction", "lipschitz_linf_log10",
      "lipschitz_l2_log10", "log_l0", "log_l1", "log_l2", "histogram"}`` (the histogram as lists).
    """
    stats, reduction = sparsity.weight_sparsity(model), sparsity.structure_reduction(reference, model)
    norms, products = sparsity.weight_norms(model), sparsity.norm_products(model)
    lipschitz = {}
    for norm in ("linf", "l2"):
        pairs = lipschitz_bound(model, norm, iterations=int(lipschitz_iterations), tol=lipschitz_tol)
        lipschitz[norm] = float(np.log10(pairs[~np.eye(len(pairs), dtype=bool)].max()))
    histogram = sparsity.weight_histogram_data(model, bins=int(bins))
    return {
        "sparsity": stats["overall"], "params_reduction": reduction["params"] if structured else stats["overall"],
        "flops_reduction": reduction["flops"],
        "lipschitz_linf_log10": lipschitz["linf"], "lipschitz_l2_log10": lipschitz["l2"],
        "log_l0": float(sum(math.log(v["l0"]) if v["l0"] else -math.inf for v in norms.values())),
        "log_l1": products["log_l1"], "log_l2": products["log_l2"],
        "histogram": {"counts": histogram["counts"].tolist(), "edges": histogram["edges"].tolist(),
                      "zeros": histogram["zeros"], "size": histogram["size"]},
    }
