"""Guo et al. 2018 §4.1: sparse linear classifiers on MNIST under progressive pruning (Fig. 1).

Each round records r∞ (FGS, ε = 0.1) and r2 (DeepFool) beside the closed forms of the paper's
theorems for the same model and images (``tfsparse.metrics.linear_model_bounds``): Thm 3.1
(``thm31_r2``, ``thm31_r_inf_bound``) for the binary tasks, Thm 3.2 (``thm32_r2_bound``,
``thm32_r_inf_bound``) for the multi-class one.

Variants (``--config=configs/guo_linear.py:VARIANT``), task × budget:
  quick             "1" vs "7" on the embedded MNIST sample, 3 seeds, 6 rounds of ρ = 1/3
                    (91% sparsity); about a minute on 2 CPU cores.
  quick_multiclass  the 10-class model on the embedded sample, 3 seeds, 6 rounds; ~2 minutes.
  binary            "1" vs "7": one logit, softplus loss τ(−y·(wᵀx + b)), SGD momentum 0.9,
                    20 epochs; 16 rounds of ρ = 1/3 (99.74%), 1,000 retraining iterations per
                    round; 3 seeds; r∞/r2 on 2,000 test images. Paper: 99.17% clean, r2 2.01
                    (DeepFool), 2.32 (C&W). Full MNIST: pass --config.data.data_dir.
  binary08          as binary, "0" vs "8" (the paper's other example pair; no numbers given).
  multiclass        softmax regression over the 10 digits; r∞/r2 on 1,000 test images.
                    Paper: 92.26% clean.
  paper, paper08, paper_multiclass
                    the three tasks with the paper's 10 dense references and r∞/r2 on the
                    whole test split (meant for a GPU or a long background run).

The four measures (FGS/rFGS r∞, DeepFool/C&W r2) are switched in the ``eval`` section
(``configs/common.py: evaluation``); the ``paper*`` variants turn all of them on.

Example (full MNIST, 3 seeds; ~10 min (binary) to ~30 min (multiclass) on 2 CPU cores):
  python scripts/sweep.py --config=configs/guo_linear.py:binary \
      --config.data.data_dir=../shared/data/mnist.npz --workdir=runs/guo_linear17
"""

import ml_collections

from configs import common

# task -> (data.classes, model.name, eval.num_examples of the non-paper budgets)
TASKS = {
    "binary": ("1,7", "linear_binary", 2000),
    "binary08": ("0,8", "linear_binary", 2000),
    "multiclass": ("", "linear", 1000),
}
VARIANTS = {
    "quick": ("binary", "quick"), "quick_multiclass": ("multiclass", "quick"),
    "binary": ("binary", "full"), "binary08": ("binary08", "full"), "multiclass": ("multiclass", "full"),
    "paper": ("binary", "paper"), "paper08": ("binary08", "paper"), "paper_multiclass": ("multiclass", "paper"),
}


def get_config(arg=None):
    variant = common.parse_variant(arg, tuple(VARIANTS))
    task, budget = VARIANTS[variant]
    classes, model_name, num_examples = TASKS[task]
    config = ml_collections.ConfigDict()
    config.experiment = "guo_progressive_pruning"
    config.variant = variant
    config.seeds = (0, 1, 2)
    config.xla = "auto"
    config.verbose = 0
    config.data = common.data("mnist", classes=classes)
    config.model = common.model(model_name, normalization="none", kernel_initializer="lecun_uniform")
    config.train = common.lenet_training(steps=0)
    config.train.update({"epochs": 20.0, "weight_decay": 0.0, "lr_schedule": "constant"})
    config.prune = ml_collections.ConfigDict(
        {"rounds": 16, "rate": 1.0 / 3.0, "retrain_steps": 1_000, "retrain_learning_rate": 0.001,
         "retrain_lr_schedule": "constant", "keep_dense": ()}
    )
    config.eval = common.evaluation(num_examples=num_examples, fgs_eps=0.1)
    if budget == "quick":
        config.prune.rounds = 6
        config.prune.retrain_steps = 100
    elif budget == "paper":
        config.seeds = tuple(range(10))
        config.eval.num_examples = 10_000
        config.eval.measures = "r_inf,r_inf_rfgs,r2,r2_cw"  # Guo §4's four measures
    # distribute: none (docs/SCALE.md). No mixed_precision: tfmot's pruning wrappers fail under a
    # 16-bit policy (their mask update assigns a 16-bit kernel to its float32 variable).
    return common.scale(config)
