"""Guo et al. 2018 §4.2, Fig. 2e–h: VGG-like and ResNet-32 on CIFAR-10 under progressive pruning.

The sweep of ``configs/guo_mnist.py`` on CIFAR-10: a dense reference per seed, then rounds
removing ρ = 1/3 of the remaining weights of every layer except the first and the last, which
the paper keeps dense "to avoid early accuracy degradation" (``prune.keep_dense``).

Variants (``--config=configs/guo_cifar.py:VARIANT``; the model is chosen by the variant or by
``--config.model.name=vgg_like|resnet32``):
  quick, quick_resnet32
         a CODE-PATH CHECK, not a measurement: 3 seeds, 2 epochs on 1,000 training images of
         the CIFAR-10 JPEG copy (../shared/data/cifar10_jpeg.tar.gz, see its README; the first
         load decodes 60,000 JPEGs and caches them in $TFSPARSE_CACHE), 2 rounds with 20
         retraining iterations each, r∞ (FGS) and r2 (DeepFool) on 50 test images. Models stay
         far from the paper's accuracy. quick: VGG-like (estimated 10–30 min on 2 CPU cores),
         quick_resnet32 (5–15 min); a cut-down run (256 images, 1 epoch, 1 round, 1 seed) took
         4 min / 1.6 min on 2 heavily shared cores.
  paper, paper_resnet32
         the paper's setting as far as it states it: 200 epochs of SGD (lr 0.1, ÷10 at each
         third, momentum 0.9, weight decay 5e-4, batch 128, flips and crops), 10 seeds,
         16 rounds, Guo §4's four measures (FGS / rFGS r∞, DeepFool / C&W r2) on 1,000 test
         images. Not stated in the paper, chosen here: 10 retraining epochs per round (3,910
         iterations) at lr 0.01, and FGS ε = 8/255 for r∞ (the paper gives ε = 0.1 for MNIST
         only). Paper: 93.01% (VGG-like) and 92.89% (ResNet-32) dense accuracy. Meant for a GPU.

Data: pass ``--config.data.data_dir`` pointing at the CIFAR-10 files (there is no embedded
CIFAR sample; '' means TFDS, which needs a network); numbers measured on the JPEG copy are
"CIFAR-10 (JPEG copy)", not the paper's setting.

Example (the code-path check):
  python scripts/experiment.py --config=configs/guo_cifar.py:quick_resnet32 \
      --config.data.data_dir=../shared/data/cifar10_jpeg.tar.gz --workdir=runs/guo_cifar_q
"""

import ml_collections

from configs import common

VARIANTS = {
    "quick": ("vgg_like", "quick"), "quick_resnet32": ("resnet32", "quick"),
    "paper": ("vgg_like", "paper"), "paper_resnet32": ("resnet32", "paper"),
}


def get_config(arg=None):
    variant = common.parse_variant(arg, tuple(VARIANTS))
    model_name, budget = VARIANTS[variant]
    config = ml_collections.ConfigDict()
    config.experiment = "guo_progressive_pruning"
    config.variant = variant
    config.seeds = tuple(range(10))
    config.xla = "auto"
    config.verbose = 2
    config.data = common.data("cifar10")  # data_dir: pass the CIFAR-10 files (no embedded sample)
    config.model = common.model(model_name)
    config.train = common.cifar_training(epochs=200.0)
    config.prune = ml_collections.ConfigDict(
        {"rounds": 16, "rate": 1.0 / 3.0, "retrain_steps": 3_910, "retrain_learning_rate": 0.01,
         "retrain_lr_schedule": "constant", "keep_dense": ("first", "last")}
    )
    config.eval = common.evaluation(num_examples=1000, fgs_eps=8 / 255, measures="r_inf,r_inf_rfgs,r2,r2_cw")
    if budget == "quick":
        config.seeds = (0, 1, 2)
        config.verbose = 0
        config.data.num_train, config.data.num_test = 1000, 200
        config.train.epochs = 2.0
        config.prune.rounds = 2
        config.prune.retrain_steps = 20
        config.eval.num_examples = 50
        config.eval.measures = "r_inf,r2"
    # distribute: none (docs/SCALE.md). No mixed_precision: tfmot's pruning wrappers fail under a
    # 16-bit policy (their mask update assigns a 16-bit kernel to its float32 variable).
    return common.scale(config)
