"""RSR Table 1 (Rakin et al. 2019): PGD / CNI / Lasso / RSR, before and after threshold pruning at
equal sparsity — clean, FGSM, PGD, EOT-PGD and AutoAttack accuracy, weight sparsity, seeds with
mean ± 95 % CI (tfsparse.pipelines.rsr_tables; the other RSR table configs start from ``base``).

Variants:
  quick           LeNet-5 on the embedded MNIST sample (6,000 / 1,000), 3 seeds, 2 epochs of
                  PGD-7 training (ε 0.3, step 0.1 = Madry's 2.5·ε/k, so 7 steps reach ε), PGD-7
                  from x on 200 test images, AutoAttack rand with 10 iterations and 2 draws;
                  about 25 minutes on 2 quiet CPU cores (measured under shared load: 2 epochs
                  of one model 135 s, one noisy row on 100 images 72 s; 4 models and 10 rows
                  per seed).
  mnist           full MNIST (--config.data.data_dir=../shared/data/mnist.npz), LeNet-5, 3 seeds,
                  5 epochs of PGD-7 training (step 0.1), PGD-40 (step 0.1) from x, EOT-PGD with 10
                  draws and AutoAttack rand (100 iterations, 10 draws) on 500 test images;
                  estimated 2 hours per seed on 2 quiet CPU cores.
  quick_cifar     code-path check on the CIFAR-10 JPEG copy
                  (--config.data.data_dir=../shared/data/cifar10_jpeg.tar.gz): ResNet-20, 2,000
                  training images, 1 epoch, 1 seed, 60 % sparsity — numbers mean nothing, the path
                  is CIFAR's.
  paper           ResNet-20 (λ 5e-5, 60 % sparsity; RSR Table 1 first block), CIFAR-10, 5 seeds
                  (RSR §4.1: "mean accuracy with 5 trials"), PGD-7 training and evaluation at
                  ε 8/255, step 2/255 from x (RSR §4.1, eq. 2), 200 epochs of the package's CIFAR
                  policy (RSR gives no schedule): SGD 0.1 ÷10 at each third, wd 5e-4, batch 128,
                  augmentation; PGD, EOT-PGD (20 draws) and AutoAttack rand (100 iterations, 20
                  draws) on the first 1,000 test images. For a GPU.
  paper_resnet18  the same for ResNet-18 (λ 1e-5, 85 % sparsity).
  paper_vgg16     the same for VGG-16 (λ 1e-5, 50 % sparsity).

Choices stated (RSR §3–4): the four schemes are one recipe with parts switched off, so the PGD
row trains with the same ensemble loss a = 0.5 (PNI's "vanilla" adversarial training, not
Madry's a = 0); training PGD starts at x (eq. 2, ``rsr.random_start`` False); after pruning each
model is cut at the γ that reaches ``table.sparsities`` in it (equal sparsity for every scheme,
the paper's comparison, whose PGD row is the "PGD, then γ" control); after pruning the noisy
schemes are measured with σ² of eq. 4 as the variance of the whole kernel ("full", the paper's
rule) and of its non-zero entries ("nonzero"), ``table.sigma_rules``.

Example:
  python scripts/experiment.py --config=configs/rsr_table1.py:quick --workdir=runs/rsr_table1_quick
"""

import ml_collections

from configs import common
from configs.train import adversarial_policy
from configs.train import pgd_training
from configs.train import rsr_training

VARIANTS = ("quick", "mnist", "quick_cifar", "paper", "paper_resnet18", "paper_vgg16")
# RSR §4.1 / Table 1: λ and the sparsity each network is pruned to.
PAPER_MODELS = {"paper": ("resnet20", 5e-5, 0.6), "paper_resnet18": ("resnet18", 1e-5, 0.85),
                "paper_vgg16": ("vgg16", 1e-5, 0.5)}


def get_config(arg=None):
    return base(common.parse_variant(arg, VARIANTS), "rsr_table1")


def base(variant, experiment):
    """The shared RSR table config of ``variant`` (see the module docstring) for ``experiment``."""
    family = "mnist" if variant in ("quick", "mnist") else "cifar"
    config = ml_collections.ConfigDict()
    config.experiment = experiment
    config.variant = variant
    config.seeds = (0, 1, 2) if family == "mnist" else ((0,) if variant == "quick_cifar" else (0, 1, 2, 3, 4))
    config.xla = "auto"
    config.verbose = 0
    config.training = "rsr"  # the recipe every scheme runs (tfsparse.pipelines.rsr)
    if family == "mnist":
        config.data = common.data("mnist")
        config.model = common.model("lenet5")
        train = common.lenet_training(steps=0)
    else:
        config.data = common.data("cifar10")
        config.model = common.model(PAPER_MODELS.get(variant, ("resnet20",))[0])
        train = common.cifar_training(epochs=200.0)
    config.train = train  # transfer sources trained clean (rsr_blackbox)
    config.adversarial_train = adversarial_policy(family, train)
    config.pgd = pgd_training(family)
    config.rsr = rsr_training(family, lasso=PAPER_MODELS.get(variant, (None, 5e-5))[1])
    config.table = ml_collections.ConfigDict(
        {"schemes": ("pgd", "cni", "lasso", "rsr"), "stages": ("before", "after"), "widths": (1.0,),
         "sparsities": (PAPER_MODELS[variant][2] if variant in PAPER_MODELS else 0.8 if family == "mnist" else 0.6,),
         "sigma_rules": ("full", "nonzero"),
         "inference_noise": ("on",), "num_examples": 1000, "batch_size": 500}
    )
    # AutoAttack's rand version (Croce & Hein 2020: APGD-CE + APGD-DLR with EOT) for random models;
    # "standard" or "off" are the other choices.
    config.autoattack = ml_collections.ConfigDict({"version": "rand", "steps": 100, "eot_samples": 20})
    if variant == "quick":
        config.adversarial_train.epochs = 2.0
        config.pgd.update({"step_size": 0.1, "steps": 7, "eval_steps": 7})
        config.rsr.steps = 7
        config.table.num_examples = 200
        config.autoattack.update({"steps": 10, "eot_samples": 2})
    elif variant == "mnist":
        config.adversarial_train.epochs = 5.0
        config.pgd.update({"step_size": 0.1, "steps": 7, "eval_steps": 40})
        config.rsr.update({"steps": 7, "eot_samples": 10})
        config.table.num_examples = 500
        config.autoattack.eot_samples = 10
    elif variant == "quick_cifar":
        config.data.num_train = 2000
        config.data.num_test = 500
        config.adversarial_train.epochs = 1.0
        config.train.epochs = 1.0
        config.table.num_examples = 100
        config.autoattack.update({"steps": 5, "eot_samples": 2})
    if family == "mnist":
        config.train.epochs = config.adversarial_train.epochs
    else:
        config.rsr.eot_samples = 20 if variant in PAPER_MODELS else 2  # EOT-PGD draws (AutoAttack rand's 20)
    return common.scale(config, "train", "adversarial_train", distribute=False)
