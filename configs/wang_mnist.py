"""Wang et al. Tables 1–2 on MNIST: one-shot GUP / LUP / FP / NS at p ∈ {30, 60, 90}%,
inherited vs re-initialised weights, with clean accuracy, r∞ (FGS) and r2 (DeepFool).

The model is LeNet-5 with BN (``lenet5_bn``): network slimming ranks channels by BN γ,
so a BN variant is needed for NS; the same reference serves all four methods.

Variants:
  quick  embedded MNIST sample, 2,000 + 300 steps, p ∈ {0.3, 0.9}; a few minutes on 2 CPUs.
  full   full MNIST (--config.data.data_dir=../shared/data/mnist.npz): 10,000 steps for the
         reference, 1,000 retraining steps per row, r∞/r2 on 1,000 test images.

Example:
  python scripts/experiment.py --config=configs/wang_mnist.py:full \
      --config.data.data_dir=../shared/data/mnist.npz --workdir=runs/wang_lenet5
"""

import ml_collections

from configs import common


def get_config(arg=None):
    variant = common.parse_variant(arg, ("quick", "full"))
    config = ml_collections.ConfigDict()
    config.experiment = "wang_oneshot"
    config.variant = variant
    config.seeds = (0,)
    config.xla = "auto"
    config.verbose = 0
    config.methods = ("gup", "lup", "fp", "ns")
    config.sparsities = (0.3, 0.6, 0.9)
    config.inits = ("inherited", "reinit")
    config.data = common.data("mnist")
    config.model = common.model("lenet5_bn")
    config.train = common.lenet_training(10_000)
    config.prune = ml_collections.ConfigDict(
        {"retrain_steps": 1_000, "retrain_learning_rate": 0.001, "retrain_lr_schedule": "constant",
         "keep_dense": (), "layer_types": ("conv", "dense"), "ns_l1": 1e-4, "ns_max_per_layer": 0.9}
    )
    config.eval = common.evaluation(num_examples=1000, fgs_eps=0.1)
    if variant == "quick":
        config.train.steps = 2_000
        config.prune.retrain_steps = 300
        config.sparsities = (0.3, 0.9)
        config.eval.num_examples = 500
    # distribute: none (docs/SCALE.md). No mixed_precision: tfmot's pruning wrappers fail under a
    # 16-bit policy (their mask update assigns a 16-bit kernel to its float32 variable).
    return common.scale(config)
