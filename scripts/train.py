"""Trains one zoo model, reports clean test accuracy and saves a Keras SavedModel.

Usage:
  python scripts/train.py --model=lenet300_100 --dataset=mnist --data_dir=DIR \
      --num_train=5000 --epochs=2 --workdir=runs/train1
  python scripts/train.py --config=configs/train.py:cifar --model=resnet20 --dataset=cifar10 \
      --data_dir=../shared/data --epochs=1 --workdir=runs/r20
  python scripts/train.py --model=lenet300_100 --dataset=mnist --num_train=5000 --epochs=2 \
      --training=pgd --eps=0.1 --workdir=runs/pgd1

--training picks clean, pgd (Madry PGD adversarial training) or rsr (RSR: noise injection,
ensemble loss with lasso, PGD-7, threshold pruning); --eps sets the PGD radius in pixel units
of [0, 1] images, step size and steps come from config.pgd (per-dataset defaults).

--data_dir accepts a file or a directory searched for files named after the dataset
(mnist.npz, cifar10*.tar.gz, cifar-10-batches-py/, IDX files, ...). Without it MNIST
comes from the embedded sample. Everything else comes from --config and --config.* overrides.
The workdir receives config.json, history.csv, results.json and saved_model/ (serving
signature: [0, 1] images → logits). Exit codes: 0 ok, 1 failure, 2 bad usage.
"""

import _bootstrap  # noqa: F401
from absl import flags

import tfsparse  # noqa: F401
from tfsparse import cli
from tfsparse import config as config_lib

_CONFIG = cli.define_config_file("config", f"{_bootstrap.REPO_ROOT}/configs/train.py", "Training config file[:variant].")
_MODEL = flags.DEFINE_string("model", None, "Zoo model name (overrides config.model.name), e.g. lenet5.")
_DATASET = flags.DEFINE_string("dataset", None, "Dataset name (overrides config.data.name): mnist, cifar10, ...")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Data file or directory (overrides config.data.data_dir).")
_NUM_TRAIN = flags.DEFINE_integer("num_train", None, "Use this many training images (0 = all).")
_EPOCHS = flags.DEFINE_float("epochs", None, "Epochs to train (overrides the iteration budget config.train.steps).")
_TRAINING = flags.DEFINE_enum("training", None, ["clean", "pgd", "rsr"], "Training objective (overrides config.training).")
_EPS = flags.DEFINE_float("eps", None, "PGD training radius in pixel units, e.g. 0.3 or 0.0314 (overrides config.pgd.eps).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory to create (must not already hold files).", required=True)


def main(argv):
    if len(argv) > 1:
        raise config_lib.ConfigError(f"unexpected arguments {argv[1:]}; pass options as --flags")
    config = _CONFIG.value
    cli.override(config, (
        (_MODEL.value, config.model, "name"),
        (_DATASET.value, config.data, "name"),
        (_DATA_DIR.value, config.data, "data_dir"),
        (_NUM_TRAIN.value, config.data, "num_train"),
        (_EPOCHS.value, config.train, "epochs"),
        (_EPS.value, config.pgd, "eps"),
        (_TRAINING.value, config, "training"),
    ))
    config_lib.validate(config)
    from tfsparse.training import train_and_evaluate

    train_and_evaluate(config, _WORKDIR.value)
    print(f"run directory: {_WORKDIR.value}")


if __name__ == "__main__":
    cli.run(main)
