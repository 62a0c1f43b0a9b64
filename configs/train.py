"""Config of scripts/train.py: one model, clean / PGD / RSR training, evaluation, SavedModel.

The common choices are flags of the script (--model, --dataset, --data_dir, --num_train,
--epochs, --training, --eps); everything else is set here or by --config.* overrides. Every
value is concrete: the variant names the dataset family and the training objective.

Variants (``--config=configs/train.py:VARIANT``):
  lenet      (default; alias ``mnist``) LeNet-300-100 on MNIST, clean training with Guo's Caffe
             policy (SGD 0.9, lr 0.01 'inv' decay, wd 5e-4, batch 64), 20 epochs.
  cifar      ResNet-20 on CIFAR-10, SGD 0.1 ÷10 at each third, wd 5e-4, batch 128, augmentation.
  mnist_pgd  ``lenet`` with Madry PGD training: ε 0.3, step 0.01, 40 steps, random start, ε ramped
             over the first epoch; Adam 1e-3 (``adversarial_train``).
  mnist_rsr  ``lenet`` with RSR training (PGD-40 on MNIST, where 7 steps of 0.01 cannot reach 0.3),
             PGD starting at x (RSR eq. 2).
  cifar_pgd  ``cifar`` with PGD training: ε 8/255, step 2/255, 10 steps (Wang et al.).
  cifar_rsr  ``cifar`` with RSR training: PGD-7 from x as in Rakin et al. 2019.
  mnist_ibp        the small CNN of Gowal et al. 2018 (``cnn_small``) with IBP training
                   (Gowal et al. Eq. 12: κ 1 → 0.5) at ε 0.3; Adam 5e-4, batch 100.
  mnist_crown_ibp  the same with CROWN-IBP training (Zhang et al. 2020, Eq. 7: κ 1 → 0,
                   β 1 → 0).
  mnist_gaussian   ``cnn_small`` trained on Gaussian-noised inputs (σ 0.25, Cohen et al. 2019),
                   the base classifier of randomized smoothing; the run reports the smoothed
                   classifier's certified l2 accuracy at ``smoothing.radii``.

The PGD accuracy checked after pgd/rsr training runs ``pgd.eval_steps`` steps per family
(MNIST 100, Madry et al.'s evaluation; CIFAR 7, RSR's) from x (RSR eq. 2; ``pgd.eval_random_start``).

``training`` (flag ``--training``) picks the objective; ``clean`` trains with ``train``,
``pgd``, ``rsr``, ``ibp``, ``crown_ibp`` and ``gaussian`` with ``adversarial_train`` (two sections, so a value
set for one is never replaced by the other). A budget is ``steps`` or ``epochs`` (the other 0).
The certified trainings (``certified`` section) bound the margins over the ε-ball of
``pgd.eps`` (the flag ``--eps``; ``certified.train_eps`` > 0 trains at another radius, as
Zhang et al. train at 0.4 for a test ε of 0.3); after training the run reports PGD accuracy
and IBP- and CROWN-certified accuracy at ``pgd.eps`` on the first ``pgd.eval_examples``
test images.

``distribute`` (``none``, ``mirrored``, ``multi_worker``, ``tpu``) and each train section's
``mixed_precision`` come from ``common.scale``: every variant trains on one device in float32;
docs/SCALE.md shows the other settings.
"""

import ml_collections

from configs import common

VARIANTS = ("lenet", "mnist", "cifar", "mnist_pgd", "mnist_rsr", "cifar_pgd", "cifar_rsr", "mnist_ibp",
            "mnist_crown_ibp", "mnist_gaussian")
CERTIFIED = ("ibp", "crown_ibp")


def get_config(arg=None):
    variant = common.parse_variant(arg, VARIANTS)
    family = "cifar" if variant.startswith("cifar") else "mnist"
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.xla = "auto"
    config.verbose = 2
    config.training = variant.split("_", 1)[1] if "_" in variant else "clean"
    if family == "mnist":
        config.data = common.data("mnist")
        config.model = common.model("lenet300_100")
        config.train = common.lenet_training(steps=0)
        config.train.epochs = 20.0
    else:
        config.data = common.data("cifar10")
        config.model = common.model("resnet20")
        config.train = common.cifar_training()
    config.adversarial_train = adversarial_policy(family, config.train)
    if config.training in (*CERTIFIED, "gaussian"):
        config.model = common.model("cnn_small")
        config.adversarial_train.update({"learning_rate": 5e-4, "batch_size": 100})
    config.certified = certified_training(config.training)
    config.smoothing = smoothing()
    config.eval = common.evaluation(num_examples=1000, fgs_eps=0.1 if family == "mnist" else 8 / 255)
    config.eval.epoch_examples = 200  # robustness logged at every epoch end on the first N test images
    config.pgd = pgd_training(family)
    config.rsr = rsr_training(family)
    return common.scale(config, "train", "adversarial_train")


def adversarial_policy(family, train):
    """The ``adversarial_train`` section: MNIST trains with Adam at a constant 1e-3 and no weight
    decay (Madry et al. use Adam; the LeNet SGD policy, lr 0.01 with momentum, stays at chance
    under ε = 0.3 PGD-40, see docs/RESULTS.md); CIFAR keeps the ``train`` policy (SGD 0.1, as
    Wang et al. and RSR)."""
    section = ml_collections.ConfigDict(train.to_dict())
    if family == "mnist":
        section.update({"optimizer": "adam", "learning_rate": 1e-3, "lr_schedule": "constant", "weight_decay": 0.0})
    return section


def pgd_training(family):
    """PGD adversarial training (Madry et al. 2018): MNIST ε 0.3, step 0.01, 40 steps (Madry),
    ε ramped from 0 over the first epoch; CIFAR ε 8/255, step 2/255, 10 steps (Wang), no ramp;
    ``random_start``: Madry's uniform start in the ε-ball.
    ``eval_steps``: PGD steps of the test-set PGD accuracy on the first ``eval_examples`` images,
    per family: MNIST 100 (Madry et al.'s MNIST evaluation, step 0.01), CIFAR 7 (RSR §4.1's
    PGD-7, step 2/255). ``eval_random_start``: that attack starts at x (False, RSR eq. 2:
    x̂¹ = x) or at a uniform point of the ball (True, Madry)."""
    mnist = family == "mnist"
    return ml_collections.ConfigDict(
        {"eps": 0.3 if mnist else 8 / 255, "step_size": 0.01 if mnist else 2 / 255, "steps": 40 if mnist else 10,
         "random_start": True, "seed": 0, "eval_steps": 100 if mnist else 7, "eval_random_start": False,
         "eval_examples": 500, "eps_warmup_epochs": 1.0 if mnist else 0.0}
    )


def rsr_training(family, lasso=5e-5):
    """RSR (Rakin et al. 2019): CNI noise (α init 0.25), ensemble loss a = 0.5 (eq. 5), lasso λ
    (eq. 6: 5e-5 ResNet-20, 1e-5 ResNet-18/VGG-16), PGD training with ``steps`` steps (7 on CIFAR
    as in the paper; 40 on MNIST) starting at x (``random_start`` False: RSR eq. 2, x̂¹ = x, unlike
    Madry's random start), then threshold pruning at γ (or at the γ giving
    ``target_sparsity`` when γ = 0). ``inference_noise``: noise on at test time and in the attack
    (RSR Table 5 "on"); then PGD accuracy is measured with EOT (``eot_samples``).
    ``noise_sigma_rule``: σ of eq. 4 is the variance of the whole kernel ("full", the paper's
    rule, pruned zeros included) or of its non-zero entries ("nonzero")."""
    return ml_collections.ConfigDict(
        {"clean_weight": 0.5, "lasso": lasso, "noise": "channel", "noise_alpha": 0.25,
         "inference_noise": True, "steps": 40 if family == "mnist" else 7, "random_start": False, "gamma": 0.0,
         "target_sparsity": 0.0, "eot_samples": 4, "noise_sigma_rule": "full"}
    )


def certified_training(training):
    """IBP (Gowal et al. 2018) / CROWN-IBP (Zhang et al. 2020) training: Eq. 7 of Zhang et al.,
    L = κ·CE(f(x), y) + (1 − κ)·CE(−m̲, y), m̲ = β·m̲_CROWN-IBP + (1 − β)·m̲_IBP.

    ``train_eps``: the training radius (0: ``pgd.eps``). ε is 0 for ``warmup_epochs``, then
    grows linearly to its value over ``ramp_epochs``, while κ moves from ``kappa_start`` to
    ``kappa_end`` and β from ``beta_start`` to ``beta_end`` (the papers' MNIST schedules:
    2K warm-up and 10K ramp steps of 60K in Gowal et al., epochs 10–60 of 200 in Zhang et al.;
    here 1 and 10 of 20 epochs). κ ends at 0.5 in ``mnist_ibp`` (Gowal et al.) and at 0 in every
    other variant (Zhang et al.'s CROWN-IBP; ``--training`` picks the objective, not κ); β goes
    1 → 0 (CROWN-IBP only)."""
    return ml_collections.ConfigDict(
        {"train_eps": 0.0, "norm": "linf", "warmup_epochs": 1.0, "ramp_epochs": 10.0, "kappa_start": 1.0,
         "kappa_end": 0.5 if training == "ibp" else 0.0, "beta_start": 1.0, "beta_end": 0.0}
    )


def smoothing(sigma=0.25):
    """Randomized smoothing (Cohen et al. 2019): ``gaussian`` training adds N(0, σ²) noise to every
    training batch (§4); CERTIFY then picks the class with ``n0`` draws, bounds its probability
    from ``n`` draws at level 1 − ``alpha`` (Clopper–Pearson) and certifies the l2 radius
    σ Φ⁻¹(p_A) (the paper: n0 100, n 100,000, α 0.001; n 10,000 here keeps a CPU run in minutes
    and caps the radius at σ Φ⁻¹(α^(1/n)) = 3.20σ, all n draws for the top class; the paper's n
    caps it at 3.81σ). The certified accuracy is reported at each of ``radii`` on the first
    ``num_examples`` test images, ``batch`` noisy copies per model call."""
    return ml_collections.ConfigDict(
        {"sigma": sigma, "n0": 100, "n": 10_000, "alpha": 0.001, "batch": 1000, "num_examples": 500,
         "radii": (0.0, 0.25, 0.5, 0.75, 1.0)}
    )
