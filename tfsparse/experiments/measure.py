"""Measurements every experiment records for a model: clean accuracy, sparsity, r∞, r2."""

import time

from tfsparse import attacks
from tfsparse import metrics
from tfsparse import sparsity
from tfsparse.builders import eval_subset
from tfsparse.config import xla_flag


def robustness_record(model, dataset, config):
    """Clean accuracy (whole test split), weight sparsity, r∞ (FGS) and r2 (DeepFool) of a model.

    r∞ and r2 use the first ``config.eval.num_examples`` test images (Guo eq. 1/5).
    """
    jit = xla_flag(config.xla)
    x_eval, y_eval = eval_subset(dataset, config.eval.num_examples)
    started = time.perf_counter()
    clean = metrics.clean_accuracy(model, dataset.x_test, dataset.y_test, batch_size=config.eval.batch_size)
    fgs = attacks.FGSM(eps=config.eval.fgs_eps, jit_compile=jit)
    r_inf = metrics.r_inf(model, x_eval, y_eval, config.eval.fgs_eps, attack=fgs, batch_size=config.eval.batch_size)
    deepfool = attacks.DeepFool(
        overshoot=config.eval.deepfool_overshoot,
        max_iter=config.eval.deepfool_max_iter,
        box=config.eval.deepfool_box,
        box_rule=config.eval.get("deepfool_box_rule", "accumulate"),
        jit_compile=jit,
    )
    r2 = metrics.r2(model, x_eval, y_eval, attack=deepfool, batch_size=config.eval.batch_size)
    stats = sparsity.weight_sparsity(model)
    return {
        "sparsity": stats["overall"],
        "clean_accuracy": clean,
        "r_inf": r_inf["r_inf"],
        "r2": r2["r2"],
        "r2_mean_attacked": r2["mean_l2_attacked"],
        "deepfool_failures": r2["failures"],
        "num_eval": len(x_eval),
        "eval_seconds": time.perf_counter() - started,
        "layer_sparsity": {name: v["sparsity"] for name, v in stats["layers"].items()},
    }
