"""RSR Table 5 (Rakin et al. 2019): inference noise on / off on the same trained RSR model, beside the
PGD baseline — clean, PGD (no EOT: the attack RSR reports) and EOT-PGD accuracy (the attack a
random model must face, Athalye et al. 2018), AutoAttack rand (tfsparse.pipelines.rsr_tables,
kind ``rsr_noise``). The noise switch (tfsparse.layers.set_inference_noise) flips a variable of
the one trained and pruned model, so "on" and "off" rows differ only by the noise.

Variants (settings as in configs/rsr_table1.py, which this file starts from):
  quick        LeNet-5 on the embedded MNIST sample, 3 seeds, 80 % sparsity; about 15 minutes on 2
               quiet CPU cores (2 models, 6 rows per seed).
  mnist        the same on full MNIST (--config.data.data_dir=../shared/data/mnist.npz).
  quick_cifar  code-path check on the CIFAR-10 JPEG copy (ResNet-20, 2,000 images, 1 epoch).
  paper        VGG-16 at 50 % sparsity (RSR Table 5), λ 1e-5, CIFAR-10, 5 seeds; for a GPU.

RSR's claim under test: noise at inference helps against attacks that ignore it (PGD) but not
against EOT-PGD. Rows: PGD and RSR, before and after pruning (RSR's "Baseline (PGD)" is the
unpruned PGD row), RSR with noise on and off.

Example:
  python scripts/experiment.py --config=configs/rsr_noise.py:quick --workdir=runs/rsr_noise_quick
"""

from configs import common
from configs import rsr_table1

VARIANTS = ("quick", "mnist", "quick_cifar", "paper")


def get_config(arg=None):
    variant = common.parse_variant(arg, VARIANTS)
    config = rsr_table1.base("paper_vgg16" if variant == "paper" else variant, "rsr_noise")
    config.variant = variant
    config.table.schemes = ("pgd", "rsr")
    config.table.sigma_rules = (config.rsr.noise_sigma_rule,)
    config.table.inference_noise = ("on", "off")
    return config
