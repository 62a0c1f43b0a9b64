"""Default config of scripts/prune.py: one-shot pruning of a saved model, then retraining.

The common choices are flags (--model, --method, --sparsity, --dataset, --data_dir,
--retrain_epochs, --training, --eps, --output); the rest is set here or by --config.* overrides, e.g.
``--config.prune.keep_dense='("first","last")'`` or ``--config.prune.gamma=0.05``.
"""

import ml_collections

from configs import common
from configs import train as train_config


def get_config(arg=None):
    common.parse_variant(arg, ("default",))
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.xla = "auto"
    config.verbose = 2
    config.method = "gup"
    config.sparsity = 0.5
    config.data = common.data("mnist")
    # Retraining: SGD momentum 0.9 at a tenth of the LeNet learning rate, constant.
    config.train = common.lenet_training(steps=0)
    config.train.update({"learning_rate": 0.001, "lr_schedule": "constant", "epochs": 1.0})
    # ``training``: "clean" retrains with ``train``; "pgd" fine-tunes adversarially (flag
    # --training) with Madry's MNIST PGD (``pgd``: ε 0.3, 40 steps of 0.01, random start, no ε
    # ramp: the reference is already robust) and Adam at 1e-4 (``adversarial_train``).
    config.training = "clean"
    config.pgd = train_config.pgd_training("mnist")
    config.pgd.eps_warmup_epochs = 0.0
    config.adversarial_train = train_config.adversarial_policy("mnist", config.train)
    config.adversarial_train.learning_rate = 1e-4
    # "ibp" / "crown_ibp" fine-tune on the certified loss (Zhang et al. 2020, Eq. 7) at pgd.eps
    # with κ and β at their final values from the first step (the source is trained already).
    config.certified = train_config.certified_training("crown_ibp")
    config.certified.update({"warmup_epochs": 0.0, "ramp_epochs": 0.0})
    config.prune = ml_collections.ConfigDict(
        {"keep_dense": (), "layer_types": ("conv", "dense"), "gamma": -1.0, "ns_max_per_layer": 0.9}
    )
    config.eval = common.evaluation(num_examples=1000, fgs_eps=0.1)
    # distribute: none (docs/SCALE.md); training=pgd runs on one device only. No mixed_precision:
    # tfmot's pruning wrappers fail under a 16-bit policy (their mask update assigns a 16-bit
    # kernel to its float32 variable).
    return common.scale(config)
