"""Guo et al. 2018 §4.1: sparse linear classifiers on MNIST under progressive pruning (Fig. 1).

Variants (``--config=configs/guo_linear.py:VARIANT``):
  binary      "1" vs "7" with one logit and the softplus loss τ(−y·(wᵀx + b)); SGD momentum,
              20 epochs; 16 rounds of ρ = 1/3. Paper: 99.17% clean, r2 2.01 (DeepFool).
  multiclass  softmax regression over the 10 digits. Paper: 92.26% clean.
  quick       the binary model on the embedded sample, 6 rounds (about a minute on 2 CPU cores).

Example:
  python scripts/sweep.py --config=configs/guo_linear.py:binary \
      --config.data.data_dir=../shared/data/mnist.npz --workdir=runs/guo_linear17
"""

import ml_collections

from configs import common


def get_config(arg=None):
    variant = common.parse_variant(arg, ("binary", "multiclass", "quick"))
    config = ml_collections.ConfigDict()
    config.experiment = "guo_progressive_pruning"
    config.variant = variant
    config.seeds = (0,)
    config.xla = "auto"
    config.verbose = 0
    config.data = common.data("mnist", classes="1,7")
    config.model = common.model("linear_binary", normalization="none", kernel_initializer="lecun_uniform")
    config.train = common.lenet_training(steps=0)
    config.train.update({"epochs": 20.0, "weight_decay": 0.0, "lr_schedule": "constant"})
    config.prune = ml_collections.ConfigDict(
        {"rounds": 16, "rate": 1.0 / 3.0, "retrain_steps": 1_000, "retrain_learning_rate": 0.001,
         "retrain_lr_schedule": "constant", "keep_dense": ()}
    )
    config.eval = common.evaluation(num_examples=2000, fgs_eps=0.1)
    if variant == "multiclass":
        config.data.classes = ""
        config.model.name = "linear"
        config.eval.num_examples = 1000
    elif variant == "quick":
        config.prune.rounds = 6
        config.prune.retrain_steps = 100
    # distribute: none (docs/SCALE.md). No mixed_precision: tfmot's pruning wrappers fail under a
    # 16-bit policy (their mask update assigns a 16-bit kernel to its float32 variable).
    return common.scale(config)
