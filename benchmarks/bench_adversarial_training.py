"""Time of one PGD-k adversarial training step vs k+1 clean training steps (SPEC §8).

Same model, same batch: LeNet-5 on MNIST shapes (batch 128, PGD-40, ε 0.3, step 0.01,
Madry) and ResNet-20 on CIFAR shapes (batch 128, PGD-10, ε 8/255, step 2/255, Wang),
XLA on and off. Target: ratio (adversarial step) / (k+1 clean steps) ≤ 1.0. Peer: IBM ART
``AdversarialTrainerMadryPGD`` (ε 0.3, step 0.01, 40 steps), 4.2 s per batch of 128 on
LeNet-5 MNIST with 2 CPU cores; target ≥ 3× faster per batch.

    python benchmarks/bench_adversarial_training.py [--models=lenet5,resnet20] [--xla=off,on] [--repeats=5]

With ART installed (``pip install .[bench]``) the LeNet-5 rows also time ART's
``AdversarialTrainerMadryPGD`` on the same architecture and batch (``--skip_art`` to skip):
one warm-up batch, then ``fit`` over ``repeats`` batches of 128, seconds per batch.
"""

import argparse
import json
import time

import numpy as np
from _peers import available

import tfsparse  # noqa: F401
from tfsparse import models
from tfsparse.compat import keras
from tfsparse.training import AdversarialModel

SETTINGS = {
    "lenet5": dict(shape=(28, 28, 1), eps=0.3, step_size=0.01, steps=40),
    "resnet20": dict(shape=(32, 32, 3), eps=8 / 255, step_size=2 / 255, steps=10),
}


def interleaved_seconds(clean, adv, x, y, k, repeats):
    """Median seconds of one adversarial step and of one clean step, measured interleaved.

    Two warm-up calls each, then ``repeats`` rounds of (k+1 clean steps, one adversarial
    step), so that drifts in the machine's speed hit both alike.
    """
    for _ in range(2):
        clean.train_on_batch(x, y)
        adv.train_on_batch(x, y)
    clean_times, adv_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(k + 1):
            clean.train_on_batch(x, y)
        clean_times.append((time.perf_counter() - start) / (k + 1))
        start = time.perf_counter()
        adv.train_on_batch(x, y)
        adv_times.append(time.perf_counter() - start)
    return float(np.median(adv_times)), float(np.median(clean_times))


def art_madry_seconds(name, x, y, repeats, batch):
    """Seconds per batch of ART's ``AdversarialTrainerMadryPGD`` (ε/step/steps of ``name``)."""
    from art.defences.trainer import AdversarialTrainerMadryPGD
    from art.estimators.classification import TensorFlowV2Classifier

    s = SETTINGS[name]
    classifier = TensorFlowV2Classifier(
        model=models.get(name)(10, s["shape"], 0.5, 0.25), nb_classes=10, input_shape=s["shape"],
        loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9), clip_values=(0.0, 1.0))

    def fit(n_batches):
        trainer = AdversarialTrainerMadryPGD(
            classifier, nb_epochs=1, batch_size=batch, eps=s["eps"], eps_step=s["step_size"],
            max_iter=s["steps"], num_random_init=1)
        xs, ys = np.tile(x, (n_batches, 1, 1, 1)), np.tile(y, n_batches)
        start = time.perf_counter()
        trainer.fit(xs, ys)
        return (time.perf_counter() - start) / n_batches

    fit(1)
    return fit(repeats)


def bench(name, xla, repeats, batch=128, art=False):
    s = SETTINGS[name]
    keras.utils.set_random_seed(0)
    x = np.random.rand(batch, *s["shape"]).astype(np.float32)
    y = np.random.randint(0, 10, batch)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    clean = models.get(name)(10, s["shape"], 0.5, 0.25)
    clean.compile(keras.optimizers.SGD(0.01, momentum=0.9), loss, jit_compile=xla)
    adv = AdversarialModel(models.get(name)(10, s["shape"], 0.5, 0.25), eps=s["eps"],
                           step_size=s["step_size"], steps=s["steps"])
    adv.compile(keras.optimizers.SGD(0.01, momentum=0.9), loss, jit_compile=xla)
    t_adv, t_clean = interleaved_seconds(clean, adv, x, y, s["steps"], repeats)
    row = {"model": name, "xla": xla, "batch": batch, "pgd_steps": s["steps"],
           "adv_step_s": round(t_adv, 4), "clean_step_s": round(t_clean, 5),
           "ratio_vs_k_plus_1_clean": round(t_adv / ((s["steps"] + 1) * t_clean), 3)}
    if art:
        t_art = art_madry_seconds(name, x, y, repeats, batch)
        row.update(art_madry_s_per_batch=round(t_art, 3), art_over_ours=round(t_art / t_adv, 2))
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,resnet20")
    parser.add_argument("--xla", default="off,on")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip_art", action="store_true")
    args = parser.parse_args()
    use_art = available("art", not args.skip_art)
    for name in args.models.split(","):
        for xla in args.xla.split(","):
            # ART runs eagerly either way: time it once per model, on the XLA-off row.
            art_row = use_art and name == "lenet5" and xla == "off"
            print(json.dumps(bench(name, xla == "on", args.repeats, art=art_row)), flush=True)


if __name__ == "__main__":
    main()
