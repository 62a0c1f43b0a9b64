"""Guo et al. 2018 §4.2, Table 1: activation L1 at the input of the last fully connected layer, on MNIST.

For each λ of ``activation_l1.strengths`` and each seed, a LeNet (the Caffe references of
``configs/guo_mnist.py``: same data, model and training sections) is trained with λ times the batch
mean of the per-example L1 norm of the activations feeding its last fully connected layer
(``tfsparse.layers.ActivationL1``: LeNet-300-100's ``fc2_relu``, 100 units; LeNet-5's ``fc1_relu``,
500 units) added to the loss. Recorded: the fraction of exact zeros there over the test split
("Sparsity (a)"), r∞ (FGS, ε = 0.1), r2 (DeepFool) and clean accuracy, mean ± 95% CI over seeds.
λ = 0 is the unregularised reference (Table 1's first row per network). The paper does not give
its λ values; the grid (0, 3e-3, 3e-2) is this project's choice, picked to span its reported
activation sparsities (LeNet-300-100 45% / 76% / 95%, LeNet-5 51% / 97.5% / 99.6%). Calibration
(embedded sample, 3,000 iterations, seed 0; activation sparsity / clean accuracy):
LeNet-300-100 λ 0: 26% / 0.934, 3e-4: 42% / 0.937, 3e-3: 75% / 0.940, 3e-2: 96% / 0.940;
LeNet-5 λ 0: 47% / 0.972, 3e-4: 85% / 0.974, 3e-3: 98% / 0.971.

Variants (``--config=configs/guo_activation_l1.py:VARIANT``; LeNet-5 with
``--config.model.name=lenet5``):
  quick  LeNet-300-100 on the embedded MNIST sample, 3,000 iterations per model, 3 λ × 3 seeds,
         r∞/r2 on 500 test images; ~5 min on 2 CPU cores.
  full   full MNIST (--config.data.data_dir), 50,000 iterations per model (Caffe policy), 3 seeds,
         r∞/r2 on 1,000 test images; ~1 h (LeNet-300-100) to ~3 h (LeNet-5) on 2 CPU cores.
  paper  as full with 10 seeds and the whole test split (meant for a GPU).

Example:
  python scripts/experiment.py --config=configs/guo_activation_l1.py:full \
      --config.data.data_dir=../shared/data/mnist.npz --config.model.name=lenet5 --workdir=runs/guo_table1_lenet5
"""

import ml_collections

from configs import guo_mnist


def get_config(arg=None):
    config = guo_mnist.get_config(arg)  # the same dense references as Fig. 2 (and the variant check)
    del config.prune
    del config.distribute  # trains on one device (the pipeline has no tf.distribute path)
    config.experiment = "guo_activation_l1"
    config.seeds = (0, 1, 2) if config.variant != "paper" else tuple(range(10))
    config.eval.measures = "r_inf,r2"  # Table 1 reports FGS r∞ and DeepFool r2
    config.activation_l1 = ml_collections.ConfigDict(
        # layer: '' = the input of the last fully connected layer (Guo's choice).
        {"strengths": (0.0, 3e-3, 3e-2), "layer": ""}
    )
    if config.variant == "quick":
        config.eval.num_examples = 500
    return config
