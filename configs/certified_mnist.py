"""Certified robustness of dense and pruned small CNNs on MNIST (issue 34, item 5).

Per seed, per training (``clean``, ``pgd``, ``ibp``, ``crown_ibp``; ``gaussian`` for randomized
smoothing, at each σ of ``smoothing_sigmas`` instead of ε), per ε of ``eps_values`` and per
sparsity: the dense model trained with that objective, then pruned once by global magnitude and
fine-tuned with the same objective (tfsparse/pipelines/certified.py); every model measured at
its ε on the first ``measure.num_examples`` test images: clean, PGD, AutoAttack, IBP- and
CROWN-certified accuracy (smoothing: the smoothed classifier's certified l2 accuracy at
``smoothing.radii``, CERTIFY with ``smoothing.n`` draws). The model is the small CNN of Gowal
et al. 2018 (``cnn_small``).
Training: Adam 5e-4, batch 100 (Zhang et al. 2020); PGD training as Madry et al. (40 steps of
0.01, random start); IBP κ 1 → 0.5 (Gowal et al.), CROWN-IBP κ 1 → 0 and β 1 → 0 (Zhang et al.),
ε 0 during ``warmup_epochs`` then ramped linearly over ``ramp_epochs``.

Variants:
  quick  code-path check: the embedded MNIST sample, 1 seed, ε 0.1, sparsities 0 and 0.8, 3
         epochs (certified: 0.5 warm-up, 1.5 ramp), 1 fine-tuning epoch, PGD-10 training (step
         0.03), 200 test images, PGD-20, no AutoAttack; smoothing at σ 0.25 only, 1,000 draws
         on 100 images.
  full   full MNIST (--config.data.data_dir=../shared/data/mnist.npz), 3 seeds, ε 0.1 and 0.3,
         sparsities 0, 0.5, 0.8, 0.9, 0.95; 20 epochs (1 warm-up, 10 ramp), 3 fine-tuning epochs;
         1,000 test images, PGD-100, AutoAttack (standard); smoothing at σ 0.25 and 0.5, 10,000
         draws on 500 images. For 2 cores run one seed per directory (--config.seeds='(1,)')
         and pool them with scripts/report.py.
  paper  Zhang et al. 2020's MNIST schedule for a GPU: 200 epochs, ε ramped over epochs 10–60,
         trained at ε 0.2 for 0.1 and 0.4 for 0.3 (``train_eps``), 20 fine-tuning epochs, the
         whole test split, AutoAttack; smoothing with Cohen et al.'s 100,000 draws on 1,000 images.

Example:
  python scripts/experiment.py --config=configs/certified_mnist.py:quick --workdir=runs/certified_quick
"""

import ml_collections

from configs import common
from configs import train as train_config

VARIANTS = ("quick", "full", "paper")


def get_config(arg=None):
    variant = common.parse_variant(arg, VARIANTS)
    config = ml_collections.ConfigDict()
    config.experiment = "certified_pruning"
    config.variant = variant
    config.seeds = (0, 1, 2)
    config.xla = "auto"
    config.verbose = 0
    config.trainings = ("clean", "pgd", "ibp", "crown_ibp", "gaussian")
    config.smoothing_sigmas = (0.25, 0.5)  # the gaussian rows: σ of training and of the smoothed classifier
    config.eps_values = (0.1, 0.3)
    config.train_eps = ()  # one per ε of eps_values, or empty: train at each ε
    config.sparsities = (0.0, 0.5, 0.8, 0.9, 0.95)
    config.finetune_epochs = 3.0
    config.data = common.data("mnist")
    config.model = common.model("cnn_small")
    config.train = policy(epochs=20.0)
    config.adversarial_train = policy(epochs=20.0)
    config.pgd = train_config.pgd_training("mnist")  # 40 steps of 0.01, random start, ε warm-up 1 epoch
    config.rsr = train_config.rsr_training("mnist")  # read by the shared recipe only for training == "rsr"
    config.ibp = train_config.certified_training("ibp")
    config.crown_ibp = train_config.certified_training("crown_ibp")
    config.smoothing = train_config.smoothing()  # CERTIFY: n0 100, n 10,000, α 0.001 on 500 images
    config.measure = ml_collections.ConfigDict(
        {"num_examples": 1000, "batch_size": 500, "pgd_steps": 100, "pgd_step_size": 0.01, "pgd_restarts": 1,
         "autoattack": True, "autoattack_steps": 100, "autoattack_target_classes": 9,
         "autoattack_square_queries": 5000})
    if variant == "quick":
        config.seeds = (0,)
        config.eps_values = (0.1,)
        config.sparsities = (0.0, 0.8)
        config.finetune_epochs = 1.0
        config.train.epochs = config.adversarial_train.epochs = 3.0
        config.pgd.steps, config.pgd.step_size = 10, 0.03
        for section in (config.ibp, config.crown_ibp):
            section.update({"warmup_epochs": 0.5, "ramp_epochs": 1.5})
        config.measure.update({"num_examples": 200, "pgd_steps": 20, "autoattack": False})
        config.smoothing_sigmas = (0.25,)
        config.smoothing.update({"n": 1000, "num_examples": 100})
    elif variant == "paper":
        config.train_eps = (0.2, 0.4)
        config.finetune_epochs = 20.0
        config.train.epochs = config.adversarial_train.epochs = 200.0
        for section in (config.ibp, config.crown_ibp):
            section.update({"warmup_epochs": 10.0, "ramp_epochs": 50.0})
        config.measure.num_examples = 10_000
        config.smoothing.update({"n": 100_000, "num_examples": 1000})  # Cohen et al.: 100,000 draws
    return common.scale(config, "train", "adversarial_train")


def policy(epochs):
    """Adam at a constant 5e-4, batch 100, no weight decay (Zhang et al. 2020's MNIST optimiser; the
    same for every objective, so the trainings differ only in their loss)."""
    return ml_collections.ConfigDict(
        {"optimizer": "adam", "batch_size": 100, "learning_rate": 5e-4, "momentum": 0.9, "weight_decay": 0.0,
         "lr_schedule": "constant", "steps": 0, "epochs": epochs, "augment": False}
    )
