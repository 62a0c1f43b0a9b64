"""keras-tuner search over RSR's lasso λ, target sparsity (γ), clean weight a and noise init.

    python scripts/tune.py --config=configs/tune_rsr.py:quick --workdir=runs/tune_q

``quick``: LeNet-5 on 1,000 embedded MNIST images, 1 epoch, PGD-7 at ε = 0.1, 4 trials
(minutes on 2 CPU cores). ``paper``: ResNet-20 on CIFAR-10 (RSR §4: ε = 8/255, step 2/255,
PGD-7 training, λ around 5e-5, a = 0.5), 20 trials — meant for a GPU.

``search.objective``: ``"constrained"`` (default) scores a trial PGD accuracy − penalty ·
max(0, min_sparsity − sparsity) (robust accuracy subject to sparsity ≥ min_sparsity);
``"weighted"`` scores weight_clean · clean + weight_robust · PGD accuracy + weight_sparsity ·
sparsity. Every trial's clean / PGD accuracy and sparsity land in trials.csv/trials.md; the
Pareto front over (sparsity, clean, PGD accuracy) goes to results.json and pareto.png, the
over-pruning point (the first searched sparsity whose best PGD accuracy is more than
``over_pruning_drop`` below the best at lower sparsity) to both, and RSR Fig. 2a–c (PGD
accuracy vs sparsity, accuracy vs λ, vs γ) to fig2.png — all from the same trials.

Trials run in parallel with keras-tuner's distributed mode: one chief (the oracle, which
writes the run directory) and N workers running trials, e.g.
``python scripts/launch_local.py --keras_tuner --num_workers=2 -- scripts/tune.py FLAGS`` (docs/SCALE.md).
"""

import ml_collections

from configs import common
from configs.train import adversarial_policy
from configs.train import pgd_training
from configs.train import rsr_training


def get_config(arg=None):
    variant = common.parse_variant(arg, ("quick", "paper"))
    quick = variant == "quick"
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.xla = "auto"
    config.verbose = 0
    config.max_trials = 4 if quick else 20
    config.data = common.data("mnist" if quick else "cifar10", num_train=1000 if quick else 0,
                              num_test=200 if quick else 0)
    config.model = common.model("lenet5" if quick else "resnet20")
    family = "mnist" if quick else "cifar"
    train = common.lenet_training(steps=0) if quick else common.cifar_training(epochs=120.0)
    train.epochs = 1.0 if quick else train.epochs
    config.adversarial_train = adversarial_policy(family, train)
    config.training = "rsr"
    config.pgd = pgd_training(family)
    if quick:
        config.pgd.update({"eps": 0.1, "step_size": 0.02})
    config.pgd.eval_steps = 10 if quick else 20
    config.pgd.eps_warmup_epochs = 0.0
    config.rsr = rsr_training(family)
    config.rsr.steps = 7
    config.rsr.eot_samples = 2 if quick else 8
    config.search = ml_collections.ConfigDict(
        {"lasso_min": 1e-6, "lasso_max": 1e-3, "sparsities": [0.3, 0.5, 0.7] if quick else [0.5, 0.6, 0.7, 0.85],
         "clean_weights": [0.5], "noise_alphas": [0.1, 0.25], "min_sparsity": 0.5, "penalty": 1.0,
         "eval_examples": 200 if quick else 1000, "objective": "constrained",
         "weight_clean": 0.25, "weight_robust": 0.5, "weight_sparsity": 0.25, "over_pruning_drop": 0.05}
    )
    return common.scale(config, "adversarial_train", distribute=False)
