"""Trains one zoo model, evaluates it and saves a Keras SavedModel (tfsparse.pipelines.train).

Usage:
  python scripts/train.py --model=lenet300_100 --dataset=mnist --data_dir=DIR \
      --num_train=5000 --epochs=2 --workdir=runs/train1
  python scripts/train.py --config=configs/train.py:cifar --model=resnet20 --dataset=cifar10 \
      --data_dir=../shared/data --epochs=1 --workdir=runs/r20
  python scripts/train.py --config=configs/train.py:mnist_pgd --num_train=5000 --epochs=2 \
      --eps=0.1 --workdir=runs/pgd1
  python scripts/train.py --config=configs/train.py:mnist_crown_ibp --epochs=2 --eps=0.1 \
      --workdir=runs/crown_ibp1

--training picks clean, pgd (Madry PGD adversarial training), rsr (RSR: noise injection,
ensemble loss with lasso, PGD, threshold pruning), ibp or crown_ibp (certified training on
interval / CROWN-IBP bounds, Gowal et al. 2018 / Zhang et al. 2020; the run then also reports
IBP- and CROWN-certified accuracy) or gaussian (Gaussian noise augmentation, the base
classifier of randomized smoothing; the run reports the smoothed classifier's certified l2
accuracy); --eps sets the training radius in pixel units of [0, 1] images. The config variant
holds the dataset family's settings: lenet (default, MNIST), cifar, mnist_pgd, mnist_rsr,
cifar_pgd, cifar_rsr, mnist_ibp, mnist_crown_ibp, mnist_gaussian (configs/train.py).

--config.distribute=mirrored (every GPU here), multi_worker (the TF_CONFIG cluster, e.g. under
scripts/launch_local.py) or tpu trains under that tf.distribute strategy, batch_size being the
global batch; --config.adversarial_train.mixed_precision=true computes in 16 bits (docs/SCALE.md).

The workdir receives config.json, results.json (status, last completed epoch, results),
history.csv, tensorboard/, checkpoints/ and saved_model/ (serving signature: [0, 1] images ->
logits). A killed or interrupted run continues with the same flags plus --resume.
Exit codes: 0 ok, 1 failure, 2 bad usage, 130/143 interrupted.
"""

import _bootstrap  # noqa: F401  (sys.path for configs/, quiet TF logs)
from absl import flags

from tfsparse import cli

_CONFIG = cli.define_config_file("config", f"{_bootstrap.REPO_ROOT}/configs/train.py", "Training config file[:variant].")
_MODEL = flags.DEFINE_string("model", None, "Zoo model name (config.model.name), e.g. lenet5.")
_DATASET = flags.DEFINE_string("dataset", None, "Dataset name (config.data.name): mnist, cifar10, ...")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Data file or directory (config.data.data_dir).")
_NUM_TRAIN = flags.DEFINE_integer("num_train", None, "Use this many training images (config.data.num_train; 0 = all).")
_EPOCHS = flags.DEFINE_float("epochs", None, "Epochs to train (sets train.epochs and adversarial_train.epochs; "
                                             "their steps become 0).")
_TRAINING = flags.DEFINE_enum("training", None, ["clean", "pgd", "rsr", "ibp", "crown_ibp", "gaussian"],
                              "Training objective (config.training).")
_EPS = cli.define_number("eps", None, "Training radius (PGD, or the certified bound unless certified.train_eps) "
                                       "in pixel units, e.g. 0.3 or 8/255 (config.pgd.eps).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory to create (or to continue with --resume).",
                               required=True)
_RESUME = flags.DEFINE_bool("resume", False, "Continue the interrupted run in --workdir (same flags).")


def main(argv):
    config = _CONFIG.value
    budget = []
    if _EPOCHS.value is not None:  # an epoch budget replaces the iteration budget, as the flag says
        for section in (config.train, config.adversarial_train):
            budget += [(_EPOCHS.value, section, "epochs"), (0, section, "steps")]
    config = cli.resolved_config(_CONFIG, [
        (_MODEL.value, config.model, "name"), (_DATASET.value, config.data, "name"),
        (_DATA_DIR.value, config.data, "data_dir"), (_NUM_TRAIN.value, config.data, "num_train"),
        (_EPS.value, config.pgd, "eps"), (_TRAINING.value, config, "training"), *budget,
    ])
    from tfsparse.pipelines.train import train_and_evaluate

    train_and_evaluate(config, _WORKDIR.value, resume=_RESUME.value)
    print(f"run directory: {_WORKDIR.value}")


if __name__ == "__main__":
    cli.run(main)
