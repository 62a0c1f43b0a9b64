"""Wang et al. Table 3: adversarial lottery tickets (Alg. 1, SPEC §4) against their controls.

Rows per seed: ``dense`` (θ0), ``ticket`` (θ0 ⊙ M_K), ``reinit`` (fresh weights ⊙ M_K),
``random`` (θ0 ⊙ a random mask with the ticket's per-layer sparsity); each adversarially
trained for ``adversarial_train.epochs`` epochs; clean accuracy, PGD-``pgd.eval_steps``
accuracy at the training ε, weight sparsity, and AutoAttack accuracy with
``--config.robust_eval.autoattack=True``. Mean ± 95 % CI over ``seeds``.
(tfsparse/pipelines/wang_lottery.py.)

PGD training follows Wang's pattern (10 steps of ε/4 with a random start, PGD-100 with the
same step for evaluation): CIFAR ε 8/255, step 2/255; on MNIST ε 0.3, step 0.075, with ε
ramped from 0 over the first epoch of every training phase (the MNIST policy of
configs/train.py: Adam 1e-3, constant). Budgets are epochs (``adversarial_train.steps`` 0).

Variants:
  quick        LeNet-5-BN on 2,000 images of the embedded MNIST sample (1,000 test; PGD-100
               on the first 500), 3 seeds, K = 2 × p = 0.3 (60 % sparse), search 1 epoch per
               iteration, 4 epochs per row. About 10 minutes on 2 quiet cores (3.5 per seed;
               about 7 per seed with the cores shared by other jobs).
  full         ``quick`` on full MNIST (pass --config.data.data_dir=../shared/data/mnist.npz):
               60,000 images, 3 seeds, K = 3 × p = 0.2 (60 %), 5 epochs per row, PGD-100 on
               1,000 test images. Measured: 95 min per seed in a single-threaded process beside
               another (~4.4 min per epoch); one seed per directory (--config.seeds='(1,)'),
               pooled by scripts/report.py.
  quick_cifar  code-path check only, not a measurement: ResNet-18 at width 0.25 on 1,000
               CIFAR-10 (JPEG copy) images (--config.data.data_dir=../shared/data/cifar10_jpeg.tar.gz),
               1 seed, K = 2 × p = 0.3, 1 search epoch, 2 epochs per row, PGD-20 on 200 images.
  paper        Wang's CIFAR-10 setting for a GPU: ResNet-18 (``--config.model.name=vgg16`` for
               VGG-16), K = 3 × p = 0.2 ("60 (20 × 3 iter)"), 1 epoch per search iteration,
               240 epochs per row (SGD 0.1 ÷10 at each third, wd 5e-4, batch 128), PGD-100 on
               the whole test split, 3 seeds. Other Table 3 rows: --config.lottery.iterations /
               --config.lottery.prune_fraction (e.g. 4 × 0.2 = 80 %, 3 × 0.3 = 90 %).

Example:
  python scripts/experiment.py --config=configs/wang_lottery.py:quick --workdir=runs/wang_lottery_quick
"""

import ml_collections

from configs import common
from configs.train import adversarial_policy
from configs.train import pgd_training

VARIANTS = ("quick", "full", "quick_cifar", "paper")


def get_config(arg=None):
    variant = common.parse_variant(arg, VARIANTS)
    cifar = "cifar" in variant or variant == "paper"
    config = ml_collections.ConfigDict()
    config.experiment = "wang_lottery"
    config.variant = variant
    config.seeds = (0, 1, 2)
    config.xla = "auto"
    config.verbose = 0
    config.training = "pgd"
    if cifar:
        config.data = common.data("cifar10")
        config.model = common.model("resnet18")
        config.adversarial_train = adversarial_policy("cifar", common.cifar_training(240.0))
        config.pgd = pgd_training("cifar")
    else:
        config.data = common.data("mnist")
        config.model = common.model("lenet5_bn")
        train = common.lenet_training(steps=0)
        train.epochs = 5.0
        config.adversarial_train = adversarial_policy("mnist", train)
        config.pgd = pgd_training("mnist")
        config.pgd.steps = 10
        config.pgd.step_size = 0.075
    config.pgd.eval_steps = 100
    config.pgd.eval_examples = 1000
    config.lottery = ml_collections.ConfigDict(
        {"iterations": 3, "prune_fraction": 0.2, "search_epochs": 1.0, "keep_dense": (),
         "layer_types": ("conv", "dense")}
    )
    # Alg. 1 prunes globally across conv and dense kernels, as Frankle & Carbin 2019 (Wang's one-shot
    # GUP uses conv layers only: layer_types=("conv",)). AutoAttack is off by default (its cost).
    config.robust_eval = ml_collections.ConfigDict(
        {"batch_size": 500, "autoattack": False, "autoattack_version": "standard"}
    )
    if variant == "quick":
        config.data.num_train = 2000
        config.lottery.iterations = 2
        config.lottery.prune_fraction = 0.3
        config.adversarial_train.epochs = 4.0
        config.pgd.eval_examples = 500
    elif variant == "quick_cifar":
        config.seeds = (0,)
        config.model.width = 0.25
        config.data.num_train = 1000
        config.data.num_test = 500
        config.adversarial_train.epochs = 2.0
        config.lottery.iterations = 2
        config.lottery.prune_fraction = 0.3
        config.pgd.eval_steps = 20
        config.pgd.eval_examples = 200
    elif variant == "paper":
        config.pgd.eval_examples = 10_000
    return config
