"""Wang et al. Table 4: Inverse Weights Inheritance (Alg. 2) against dense adversarial training.

Rows per seed: ``ticket`` (Alg. 1's ticket fine-tuned N_f = ``adversarial_train.epochs``
epochs → θ′ ⊙ M_K), ``iwi`` (the large network from θ′ ⊙ M_K + θ0 ⊙ (M0 − M_K), trained
``iwi.large_epochs`` epochs) and ``dense`` (the large network from θ0, trained for IWI's total
K·N + N_f + ``iwi.large_epochs`` epochs: equal epochs). Measurements, data, PGD settings
and the ``lottery`` section as in configs/wang_lottery.py (shared: this file starts from it).
(tfsparse/pipelines/wang_iwi.py.)

Variants:
  quick        LeNet-5-BN, 2,000 embedded-sample MNIST images, 3 seeds, K = 2 × p = 0.3,
               N_f = 2, 2 large-network epochs (dense: 6). About 7 minutes on 2 quiet cores.
  full         full MNIST (--config.data.data_dir=../shared/data/mnist.npz), 3 seeds, ticket
               80 % (K = 4 × p = 0.2), N_f = 4, 3 large-network epochs (dense: 11). Measured: 92–93
               min per seed in a single-threaded process, two seeds side by side on 2 cores
               (~4.4 min per epoch); one seed per directory (--config.seeds='(1,)'), pooled by
               scripts/report.py.
  quick_cifar  code-path check only: ResNet-18 width 0.25 on 1,000 CIFAR-10 (JPEG copy) images
               (--config.data.data_dir=../shared/data/cifar10_jpeg.tar.gz), 1 seed, 1 + 1 epochs.
  paper        Wang's CIFAR-10 setting for a GPU: ResNet-18 (or --config.model.name=vgg16),
               ticket 80 % (K = 4 × p = 0.2), N_f = 120, 45 large-network epochs (Stop-E),
               dense baseline 169 epochs (Wang's base networks: 240), 3 seeds.

Example:
  python scripts/experiment.py --config=configs/wang_iwi.py:quick --workdir=runs/wang_iwi_quick
"""

import ml_collections

from configs import wang_lottery


def get_config(arg=None):
    config = wang_lottery.get_config(arg)
    variant = config.variant
    config.experiment = "wang_iwi"
    config.iwi = ml_collections.ConfigDict({"large_epochs": 3.0})
    if variant == "quick":
        config.adversarial_train.epochs = 2.0
        config.iwi.large_epochs = 2.0
    elif variant == "full":
        config.lottery.iterations = 4
        config.adversarial_train.epochs = 4.0
    elif variant == "quick_cifar":
        config.adversarial_train.epochs = 1.0
        config.iwi.large_epochs = 1.0
    elif variant == "paper":
        config.lottery.iterations = 4
        config.adversarial_train.epochs = 120.0
        config.iwi.large_epochs = 45.0
    return config
