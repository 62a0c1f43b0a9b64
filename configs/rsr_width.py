"""RSR Table 2 (Rakin et al. 2019): width ablation — PGD vs RSR at channel widths 0.25 / 0.5 / 1,
before and after threshold pruning, with the share of parameters left against the widest model
(tfsparse.pipelines.rsr_tables, kind ``rsr_width``).

Variants (settings as in configs/rsr_table1.py, which this file starts from):
  quick        MNIST analogue on CPU: LeNet-5 at widths 0.25 / 0.5 / 1 (``model.width`` scales every
               conv and dense layer), pruned to 60 / 70 / 80 %, embedded MNIST sample, 3 seeds;
               about 30 minutes on 2 quiet CPU cores (6 models, 12 rows per seed).
  mnist        the same on full MNIST (--config.data.data_dir=../shared/data/mnist.npz).
  quick_cifar  code-path check: ResNet-18 at the three widths on 2,000 CIFAR-10 JPEG-copy images
               (--config.data.data_dir=../shared/data/cifar10_jpeg.tar.gz), 1 epoch, 1 seed.
  paper        ResNet-18 (λ 1e-5) at widths 0.25 / 0.5 / 1 pruned to RSR Table 2's sparsities
               38.33 / 63.17 / 85.36 %, CIFAR-10, 5 seeds, PGD-7 from x; for a GPU.

The paper's table has PGD unpruned and RSR pruned; both stages of both schemes are measured here
(the PGD-after-pruning rows are the equal-sparsity control).

Example:
  python scripts/experiment.py --config=configs/rsr_width.py:quick --workdir=runs/rsr_width_quick
"""

from configs import common
from configs import rsr_table1

VARIANTS = ("quick", "mnist", "quick_cifar", "paper")


def get_config(arg=None):
    variant = common.parse_variant(arg, VARIANTS)
    config = rsr_table1.base("paper_resnet18" if variant in ("paper", "quick_cifar") else variant, "rsr_width")
    config.variant = variant
    config.table.schemes = ("pgd", "rsr")
    config.table.widths = (0.25, 0.5, 1.0)
    config.table.sparsities = (0.3833, 0.6317, 0.8536) if variant in ("paper", "quick_cifar") else (0.6, 0.7, 0.8)
    config.table.sigma_rules = (config.rsr.noise_sigma_rule,)
    if variant == "quick_cifar":
        config.seeds = (0,)
        config.data.update({"num_train": 2000, "num_test": 500})
        config.adversarial_train.epochs = 1.0
        config.train.epochs = 1.0
        config.table.num_examples = 100
        config.autoattack.update({"steps": 5, "eot_samples": 2})
        config.rsr.eot_samples = 2
    return config
