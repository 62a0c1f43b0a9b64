"""RSR Table 3 (Rakin et al. 2019): black-box attacks on PGD- and RSR-trained targets — ZOO success
rate (Chen et al. 2017, with the search over c) counted both ways, and accuracy under PGD examples
transferred from source models of other architectures (tfsparse.pipelines.rsr_tables, kind
``rsr_blackbox``).

Variants (training and PGD settings as in configs/rsr_table1.py, which this file starts from):
  quick        LeNet-5 targets (PGD, RSR; before / after pruning to 80 %) on the embedded MNIST sample,
               3 seeds; sources: LeNet-300-100 trained clean and with Madry PGD; ZOO on 20 seeded
               random test images, 3 rounds of the c search, 30 iterations of 128 coordinates each;
               about 20 minutes on 2 quiet CPU cores (2 sources, 2 targets, 4 rows per seed).
  mnist        the same on full MNIST (--config.data.data_dir=../shared/data/mnist.npz), ZOO on 200.
  quick_cifar  code-path check on the CIFAR-10 JPEG copy: ResNet-20 targets, VGG-16 and ResNet-18
               sources, 2,000 training images, 1 epoch, ZOO on 5 images.
  paper        RSR Table 3: ResNet-20 targets (λ 5e-5, 60 %), sources VGG-16 and ResNet-18 trained
               with PGD (their transfer accuracies of 66–67 % are those of adversarially trained
               sources; RSR does not say), ZOO on 200 random test samples (RSR §4.2) with Chen et
               al.'s 9 rounds of the c search from c = 0.01, 100 iterations of 128 coordinates per
               round; 5 seeds; for a GPU.

Success is reported both ways: over the correctly classified samples (Chen et al.) and over all
attacked test samples (RSR: "percentage of test sample being successfully classified to a wrong
class"). A source can also be a saved Keras model: --config.transfer.sources.NAME.path=PATH.

Example:
  python scripts/experiment.py --config=configs/rsr_blackbox.py:quick --workdir=runs/rsr_blackbox_quick
"""

import ml_collections

from configs import common
from configs import rsr_table1

VARIANTS = ("quick", "mnist", "quick_cifar", "paper")


def source(model, training, path=""):
    """A transfer source: a zoo ``model`` trained ``clean`` (``train``) or with ``pgd`` (Madry), or a saved ``path``."""
    return ml_collections.ConfigDict({"model": model, "training": training, "width": 1.0, "path": path})


def zoo(num_examples, rounds, iterations, coords=128):
    """The ``zoo`` section: ``rounds`` of the c search, each ``iterations`` iterations of ``coords`` coordinates."""
    return ml_collections.ConfigDict(
        {"num_examples": num_examples, "initial_const": 0.01, "binary_search_steps": rounds, "confidence": 0.0,
         "learning_rate": 0.01, "coords": coords, "max_queries": rounds * iterations * (2 * coords + 1) + 2,
         "h": 1e-3}
    )


def get_config(arg=None):
    variant = common.parse_variant(arg, VARIANTS)
    config = rsr_table1.base(variant, "rsr_blackbox")
    config.table.schemes = ("pgd", "rsr")
    config.table.sigma_rules = (config.rsr.noise_sigma_rule,)
    del config["autoattack"]
    if variant in ("quick", "mnist"):
        sources = {"lenet300_clean": source("lenet300_100", "clean"), "lenet300_pgd": source("lenet300_100", "pgd")}
        config.zoo = zoo(20 if variant == "quick" else 200, rounds=3, iterations=30)
    elif variant == "quick_cifar":
        sources = {"vgg16_pgd": source("vgg16", "pgd"), "resnet18_pgd": source("resnet18", "pgd")}
        config.zoo = zoo(5, rounds=2, iterations=5)
    else:
        sources = {"vgg16_pgd": source("vgg16", "pgd"), "resnet18_pgd": source("resnet18", "pgd")}
        config.zoo = zoo(200, rounds=9, iterations=100)
    config.transfer = ml_collections.ConfigDict({"sources": sources})
    return config
