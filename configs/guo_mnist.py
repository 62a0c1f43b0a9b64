"""Guo et al. 2018 §4.2: robustness vs weight sparsity of LeNets on MNIST under progressive pruning.

Variants (``--config=configs/guo_mnist.py:VARIANT``):
  quick  LeNet-300-100 on the embedded MNIST sample (6,000 / 1,000), 8 rounds of ρ = 1/3
         (96% sparsity); `make demo`; ~2–4 minutes on 2 CPU cores.
  full   full MNIST from --config.data.data_dir (e.g. ../shared/data/mnist.npz): 50,000
         iterations of batch 64 for the dense reference, 16 rounds, 2,000 retraining
         iterations per round, r∞/r2 on 1,000 test images; ~20–40 min on 2 CPU cores.
  paper  as full, but 10 seeds and r∞/r2 on the whole test split (meant for a GPU).

Example:
  python scripts/sweep.py --config=configs/guo_mnist.py:full \
      --config.data.data_dir=../shared/data/mnist.npz --config.model.name=lenet5 --workdir=runs/guo_lenet5
"""

import ml_collections

from configs import common


def get_config(arg=None):
    variant = common.parse_variant(arg, ("quick", "full", "paper"))
    config = ml_collections.ConfigDict()
    config.experiment = "guo_progressive_pruning"
    config.variant = variant
    config.seeds = (0,)
    config.xla = "auto"
    config.verbose = 0
    config.data = common.data("mnist")
    # Caffe's LeNets (Guo's references): inputs scaled to [0, 1] without mean/std, "xavier"
    # filler = U(±sqrt(3 / fan_in)) = Keras's lecun_uniform.
    config.model = common.model("lenet300_100", normalization="none", kernel_initializer="lecun_uniform")
    config.train = common.lenet_training(50_000)
    config.prune = ml_collections.ConfigDict(
        {"rounds": 16, "rate": 1.0 / 3.0, "retrain_steps": 2_000, "retrain_learning_rate": 0.001,
         "retrain_lr_schedule": "constant", "keep_dense": ()}
    )
    config.eval = common.evaluation(num_examples=1000, fgs_eps=0.1)
    if variant == "quick":
        config.train.steps = 3_000
        config.prune.rounds = 8
        config.prune.retrain_steps = 300
    else:
        config.verbose = 2  # one progress line per epoch of the long dense training
    if variant == "paper":
        config.seeds = tuple(range(10))
        config.eval.num_examples = 10_000
    # distribute: none (docs/SCALE.md). No mixed_precision: tfmot's pruning wrappers fail under a
    # 16-bit policy (their mask update assigns a 16-bit kernel to its float32 variable).
    return common.scale(config)
