"""IBP and CROWN bounds: wall time against one forward pass and one PGD-40 evaluation (issue 34).

The targets of issue 34: CROWN over 1,000 MNIST images of a LeNet-5-size CNN in at most 20×
the time of one PGD-40 evaluation of the same model, IBP in at most 2× one forward pass.
The model is the small CNN of Gowal et al. 2018 / Zhang et al. 2020 ("DM-small": conv 16@4×4
stride 2, conv 32@4×4 stride 2, fc 100, logits; LeNet-5 itself has max pooling, which CROWN
does not relax), trained for ``--epochs`` on MNIST so that the ReLUs are not all stable.
Every figure is taken in the same process on the same images after one warm-up (tracing)
call, median of ``--repeats``:

  * forward: ``model(x)`` in batches of ``--batch``;
  * PGD-40: ``tfsparse.PGD(eps, step_size=eps/4, steps=40).run`` (40 forward+backward passes);
  * IBP / CROWN-IBP / CROWN: ``Certifier.certify`` (margins against every other class).

Command (the figures of docs/BENCHMARKS.md, "Certified bounds")::

    python benchmarks/bench_certify.py --data=../shared/data/mnist.npz --num_examples=1000 \\
        --output=/tmp/bench_certify.json
"""

import argparse
import json
import os
import statistics
import time

import numpy as np
from bench_attacks import SHARED_MNIST

import tfsparse
from tfsparse import data
from tfsparse.certification import Certifier
from tfsparse.compat import keras


def small_cnn():
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(16, 4, strides=2, activation="relu"),
                             keras.layers.Conv2D(32, 4, strides=2, activation="relu"), keras.layers.Flatten(),
                             keras.layers.Dense(100, activation="relu"), keras.layers.Dense(10)])


def timed(function, repeats):
    function()  # warm-up: tracing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=SHARED_MNIST)
    parser.add_argument("--num_examples", type=int, default=1000)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default="")
    args = parser.parse_args()

    mnist = data.load("mnist", args.data)
    keras.utils.set_random_seed(0)
    model = small_cnn()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(mnist.x_train, mnist.y_train, epochs=max(1, int(args.epochs)), batch_size=128, verbose=0)
    x, y = mnist.x_test[:args.num_examples], mnist.y_test[:args.num_examples]
    certifier = Certifier(model)
    pgd = tfsparse.PGD(eps=args.eps, step_size=args.eps / 4, steps=40)

    def forward():
        for start in range(0, len(x), args.batch):
            model(x[start:start + args.batch], training=False).numpy()

    rows = {"forward": timed(forward, args.repeats),
            "pgd40": timed(lambda: pgd.run(model, x, y, batch_size=args.batch), args.repeats)}
    accuracy = {}
    for method in ("ibp", "crown_ibp", "crown"):
        rows[method] = timed(lambda m=method: certifier.certify(x, y, args.eps, m, batch_size=args.batch),
                             args.repeats)
        accuracy[method] = certifier.certify(x, y, args.eps, method, batch_size=args.batch).accuracy
    accuracy["pgd40"] = pgd.run(model, x, y, batch_size=args.batch).adv_accuracy
    report = {"command": vars(args), "load_before": list(os.getloadavg()), "images": len(x), "seconds": rows,
              "ibp_over_forward": rows["ibp"] / rows["forward"], "crown_over_pgd40": rows["crown"] / rows["pgd40"],
              "crown_ibp_over_pgd40": rows["crown_ibp"] / rows["pgd40"], "accuracy": accuracy}
    print(f"{len(x)} MNIST test images, eps {args.eps}, load {report['load_before'][0]:.1f}")
    for name, seconds in rows.items():
        print(f"  {name:10s} {seconds:8.2f} s   accuracy {accuracy.get(name, float('nan')):.3f}")
    print(f"  IBP / forward {report['ibp_over_forward']:.2f} (target <= 2); CROWN / PGD-40 "
          f"{report['crown_over_pgd40']:.2f} (target <= 20); CROWN-IBP / PGD-40 {report['crown_ibp_over_pgd40']:.2f}")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
