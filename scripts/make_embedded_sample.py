"""Builds tfsparse/data/_embedded/mnist_sample.npz from the full MNIST npz (provenance script).

The sample is stratified by class (600 train and 100 test images per digit), drawn without
replacement with a fixed seed, so re-running this script reproduces the shipped file
(byte-identical). Images stay uint8 and the file is written with ``np.savez_compressed``.

Usage::

    python scripts/make_embedded_sample.py [--source ../shared/data/mnist.npz] [--out PATH]
"""

import argparse
import os

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SOURCE = os.path.join(_HERE, "..", "..", "shared", "data", "mnist.npz")
DEFAULT_OUT = os.path.join(_HERE, "..", "tfsparse", "data", "_embedded", "mnist_sample.npz")


def stratified_indices(y, per_class, rng):
    """Returns sorted indices with exactly ``per_class`` examples of every label in ``y``."""
    picks = [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in np.unique(y)]
    return np.sort(np.concatenate(picks))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="full Keras-style mnist.npz")
    parser.add_argument("--out", default=DEFAULT_OUT, help="where to write the sample")
    parser.add_argument("--train_per_class", type=int, default=600)
    parser.add_argument("--test_per_class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    with np.load(args.source) as full:
        x_train, y_train = full["x_train"], full["y_train"]
        x_test, y_test = full["x_test"], full["y_test"]
    train_idx = stratified_indices(y_train, args.train_per_class, rng)
    test_idx = stratified_indices(y_test, args.test_per_class, rng)
    np.savez_compressed(
        args.out,
        x_train=x_train[train_idx].astype(np.uint8),
        y_train=y_train[train_idx].astype(np.uint8),
        x_test=x_test[test_idx].astype(np.uint8),
        y_test=y_test[test_idx].astype(np.uint8),
    )
    print(f"wrote {args.out}: {len(train_idx)} train + {len(test_idx)} test images, "
          f"{os.path.getsize(args.out) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
