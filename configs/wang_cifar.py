"""Wang et al. 2020 Tables 1–2 on CIFAR-10: adversarial one-shot pruning (LUP / GUP / FP / NS × p),
PGD-10 training and fine-tuning (ε 8/255, step 2/255, random start), PGD-100 evaluation, the
distortion lower bound (l∞ ε searched in [0, 32/255]), AutoAttack, inherited vs re-initialised
weights (Stop-C).

Data: the CIFAR-10 JPEG copy (--config.data.data_dir=../shared/data/cifar10_jpeg.tar.gz, see
../shared/data/README.md): numbers measured on it are "CIFAR-10 (JPEG copy)", not the paper's
binary release. The last ``validation.num_examples`` training images are the fixed validation
split (Stop-C, epoch selection).

Budgets. Wang §4: SGD momentum 0.9, weight decay 5e-4, batch 128, start LR 0.1; Stop-E divides
the LR by 10 at each third of the epochs (``lr_schedule = "thirds"``); Stop-C (patience 10,
relative threshold 1e-5, stop after 2 decays) for the re-initialised rows. The main text states
240 epochs for the base networks of Table 4 (used here for the reference) and 120 epochs for
training a winning ticket; it does not state the fine-tuning epochs of Table 1, for which the
``paper`` variants assume 120 (Stop-E). Re-initialised rows: Stop-C, capped at 240 epochs.

Variants:
  quick_cifar   a CODE-PATH CHECK, not a measurement: ResNet-18 at width 0.25 on 4,500 train /
                500 validation / 500 test images, p = 0.6, 2 reference + 1 fine-tuning epochs,
                Stop-C patience 1 capped at 2 epochs, PGD-100 on 100 images, distortion on 50,
                AutoAttack off; 9 rows, about 30–60 min on 2 CPU cores.
  paper         ResNet-18 (width 1), p ∈ {30, 60, 90}%, 240 / 120 / ≤ 240 epochs, PGD-100 and full
                AutoAttack on 1,000 test images, distortion bound on 500; for a GPU.
  paper_vgg16   the same with VGG-16 (BN).
  paper_densenet  the same with DenseNet-BC-40 (growth 12); FP is not defined on DenseNets
                (Wang §4.1: pruning a filter changes the inputs of every later layer), so LUP /
                GUP / NS only.

Example:
  python scripts/experiment.py --config=configs/wang_cifar.py:quick_cifar \
      --config.data.data_dir=../shared/data/cifar10_jpeg.tar.gz --workdir=runs/wang_cifar_quick
"""

import ml_collections

from configs import common
from configs.train import pgd_training
from configs.wang_mnist import measurement

VARIANTS = ("quick_cifar", "paper", "paper_vgg16", "paper_densenet")


def get_config(arg=None):
    variant = common.parse_variant(arg, VARIANTS)
    config = ml_collections.ConfigDict()
    config.experiment = "wang_oneshot"
    config.variant = variant
    config.seeds = (0,)
    config.xla = "auto"
    config.verbose = 0
    config.training = "pgd"
    config.methods = ("lup", "gup", "fp", "ns")
    config.sparsities = (0.3, 0.6, 0.9)
    config.inits = ("inherited", "reinit")
    config.select_epoch = "best_sum"
    config.data = common.data("cifar10")
    config.model = common.model("resnet18")
    config.validation = ml_collections.ConfigDict({"num_examples": 5000, "pgd_steps": 10, "pgd_step_size": 2 / 255})
    config.pgd = pgd_training("cifar")  # Wang: ε 8/255, step 2/255, 10 steps, random start
    config.adversarial_train = common.cifar_training(240.0)  # Stop-E: LR 0.1, ÷10 at each third
    config.finetune = common.cifar_training(120.0)
    config.scratch = common.cifar_training(240.0)
    config.scratch.lr_schedule = "constant"  # Stop-C decays the LR itself
    config.stop_c = ml_collections.ConfigDict({"patience": 10, "min_delta": 1e-5, "factor": 0.1, "max_decays": 2})
    config.prune = ml_collections.ConfigDict(
        {"keep_dense": (), "layer_types": ("conv",), "ns_l1": 1e-4, "ns_max_per_layer": 0.9}
    )  # Wang prunes conv layers (GUP: "across all convolutional layers")
    config.measure = measurement(eps_max=32 / 255, pgd_step_size=2 / 255)
    config.figures = ml_collections.ConfigDict({"histogram_bins": 60})
    if variant == "paper_vgg16":
        config.model.name = "vgg16"
    elif variant == "paper_densenet":
        config.model.name = "densenet_bc40"
        config.methods = ("lup", "gup", "ns")
    elif variant == "quick_cifar":
        config.model.width = 0.25
        config.data.num_train = 5000
        config.data.num_test = 500
        config.validation.num_examples = 500
        config.sparsities = (0.6,)
        config.adversarial_train.epochs = 2.0
        config.finetune.epochs = 1.0
        config.scratch.epochs = 2.0
        config.stop_c.patience = 1
        config.measure.num_examples = 100
        config.measure.distortion_examples = 50
        config.measure.autoattack = False
        config.measure.lipschitz_iterations = 100
    return common.scale(config, distribute=True)
