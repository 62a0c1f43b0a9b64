"""Guo et al. 2018 §4.2: robustness vs weight sparsity of LeNets on MNIST under progressive pruning.

Every variant measures Guo §4's four measures after each round (``eval.measures``): r∞ by
FGS and rFGS at ε = 0.1, r2 by DeepFool and C&W (``configs/common.py`` evaluation(): the
failure rule and the attack budgets), reported as mean ± 95 % CI over ``seeds``.

Variants (``--config=configs/guo_mnist.py:VARIANT``):
  quick  LeNet-300-100 on the embedded MNIST sample (6,000 / 1,000), 3 seeds, 8 rounds of
         ρ = 1/3 (96% sparsity), measures on 500 test images; `make demo`; under 10 minutes
         on 2 CPU cores (one seed measured: 110 s of CPU time, 163 s wall at nice 10 on 2
         cores shared with a load of ~6; three seeds ≈ 330 s of CPU time).
  full   full MNIST from --config.data.data_dir (e.g. ../shared/data/mnist.npz), 3 seeds: 50,000
         iterations of batch 64 for the dense reference, 16 rounds, 2,000 retraining
         iterations per round, measures on 1,000 test images (C&W 5 × 200 steps); per seed
         ~20–40 min of training on 2 CPU cores plus ~20 s (LeNet-300-100) of measuring per round.
  paper  as full, but 10 seeds, measures on the whole test split and C&W's reference budget
         (9 binary-search steps × 1,000 Adam steps, rate 0.01; meant for a GPU).

Example:
  python scripts/sweep.py --config=configs/guo_mnist.py:full \
      --config.data.data_dir=../shared/data/mnist.npz --config.model.name=lenet5 --workdir=runs/guo_lenet5
  python scripts/sweep.py --reevaluate --config=configs/guo_mnist.py:full --workdir=runs/guo_lenet5
"""

import ml_collections

from configs import common


def get_config(arg=None):
    variant = common.parse_variant(arg, ("quick", "full", "paper"))
    config = ml_collections.ConfigDict()
    config.experiment = "guo_progressive_pruning"
    config.variant = variant
    config.seeds = (0, 1, 2)  # dense references; numbers are mean ± 95 % CI over them
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
    config.eval = common.evaluation(num_examples=1000, fgs_eps=0.1, measures="r_inf,r_inf_rfgs,r2,r2_cw")
    if variant == "quick":
        config.train.steps = 3_000
        config.prune.rounds = 8
        config.prune.retrain_steps = 300
        config.eval.num_examples = 500
    else:
        config.verbose = 2  # one progress line per epoch of the long dense training
        # C&W at 5 × 200 steps, rate 0.05: within 0.2 % of the reference budget's mean l2 (at a
        # seventh of its time) where quick's 5 × 100 at rate 0.1 is within 1 % (configs/common.py).
        config.eval.update({"cw_steps": 200, "cw_learning_rate": 0.05})
    if variant == "paper":
        config.seeds = tuple(range(10))
        config.eval.num_examples = 10_000
        # Carlini & Wagner's reference budget (their code's 9 binary-search steps, rate 0.01).
        config.eval.update({"cw_binary_search_steps": 9, "cw_steps": 1_000, "cw_learning_rate": 0.01,
                            "cw_initial_const": 0.01})
    # distribute: none (docs/SCALE.md). No mixed_precision: tfmot's pruning wrappers fail under a
    # 16-bit policy (their mask update assigns a 16-bit kernel to its float32 variable).
    return common.scale(config)
