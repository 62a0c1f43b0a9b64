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

``--epoch_vs_plain`` times instead whole epochs of ``AdversarialModel.fit`` (its ``accuracy``
and ``adv_accuracy`` metrics on) against a plain ``tf.function`` PGD loop written as a user
would (random start, k sign steps with projection and clip, one training-mode step; no metric)
and a clean ``fit``: same LeNet-5, same MNIST batches (real images from ``--mnist``), same
steps, same optimizer. Target (issue 31 item 6): AdversarialModel / plain loop ≤ 1.1.

    python benchmarks/bench_adversarial_training.py --epoch_vs_plain --mnist=../shared/data/mnist.npz \
        --epoch_steps=200 --pgd_steps=10 --chunk_steps=10
"""

import argparse
import json
import os
import time

import numpy as np
from _peers import available

import tfsparse  # noqa: F401
from tfsparse import models
from tfsparse.compat import keras
from tfsparse.compat import tf
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


def plain_pgd_epoch(model, optimizer, loss, eps, step_size, steps, jit_compile):
    """One epoch of a plain ``tf.function`` PGD training loop: the peer of ``AdversarialModel.fit``.

    Written as a user would without the library (Madry et al. 2018): uniform random start,
    ``steps`` l∞ sign steps on the model in inference mode, each projected onto the ε-ball and
    clipped to [0, 1], then one training-mode forward/backward pass and the optimizer update.
    No metric is computed. Returns ``epoch(dataset)``.
    """
    @tf.function(jit_compile=jit_compile)
    def train_step(x, y):
        x_adv = tf.clip_by_value(x + tf.random.uniform(tf.shape(x), -eps, eps), 0.0, 1.0)
        for _ in tf.range(steps):
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                attack_loss = loss(y, model(x_adv, training=False))
            step = step_size * tf.sign(tape.gradient(attack_loss, x_adv))
            x_adv = tf.clip_by_value(tf.clip_by_value(x_adv + step, x - eps, x + eps), 0.0, 1.0)
        with tf.GradientTape() as tape:
            train_loss = loss(y, model(tf.stop_gradient(x_adv), training=True))
        optimizer.minimize(train_loss, model.trainable_variables, tape=tape)
        return train_loss

    def epoch(dataset):
        for x, y in dataset:
            train_step(x, y)
    return epoch


def epoch_vs_plain(mnist, epoch_steps, pgd_steps, chunk_steps, batch=128, eps=0.3, step_size=0.03, xla=False):
    """Seconds per epoch of ``AdversarialModel.fit``, the plain loop and a clean ``fit``.

    Three warm-up batches each (the traces). Then the epoch of ``epoch_steps`` batches is run
    in chunks of ``chunk_steps`` batches, each chunk by every variant in turn (``fit`` once per
    chunk, so its per-call set-up is paid epoch_steps / chunk_steps times, never less than in
    one epoch): on a machine whose load moves by the minute, all three then see the same load.
    An epoch's time is the sum of its chunks; the median of the per-chunk ratios shows the
    ratio with the load's swings damped.
    """
    with np.load(mnist) as arrays:
        x = (arrays["x_train"][: epoch_steps * batch, :, :, None] / 255.0).astype(np.float32)
        y = arrays["y_train"][: epoch_steps * batch].astype(np.int64)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).prefetch(2)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def lenet5():
        keras.utils.set_random_seed(0)
        return models.get("lenet5")(10, (28, 28, 1), 0.1307, 0.3081)

    def sgd():
        return keras.optimizers.SGD(0.01, momentum=0.9)

    adv = AdversarialModel(lenet5(), eps=eps, step_size=step_size, steps=pgd_steps)
    adv.compile(sgd(), loss, metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")], jit_compile=xla)
    clean = lenet5()
    clean.compile(sgd(), loss, metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")], jit_compile=xla)
    plain_model, plain_optimizer = lenet5(), sgd()
    plain_optimizer.build(plain_model.trainable_variables)
    plain = plain_pgd_epoch(plain_model, plain_optimizer, loss, eps, step_size, pgd_steps, xla)
    variants = {
        "adversarial_model_fit": lambda data: adv.fit(data, epochs=1, verbose=0),
        "plain_tf_function_loop": plain,
        "clean_fit": lambda data: clean.fit(data, epochs=1, verbose=0),
    }
    for run in variants.values():
        run(dataset.take(3))
    load_before = os.getloadavg()
    seconds = {name: [] for name in variants}
    for first in range(0, epoch_steps, chunk_steps):
        chunk = dataset.skip(first).take(chunk_steps)
        for name, run in variants.items():
            start = time.perf_counter()
            run(chunk)
            seconds[name].append(time.perf_counter() - start)
    epoch = {name: sum(times) for name, times in seconds.items()}
    ours, peer = seconds["adversarial_model_fit"], seconds["plain_tf_function_loop"]
    return {
        "model": "lenet5", "data": "mnist", "batch": batch, "epoch_steps": epoch_steps, "pgd_steps": pgd_steps,
        "eps": eps, "step_size": step_size, "xla": xla, "chunk_steps": chunk_steps,
        "epoch_s": {name: round(value, 2) for name, value in epoch.items()},
        "adversarial_model_over_plain": round(epoch["adversarial_model_fit"] / epoch["plain_tf_function_loop"], 3),
        "median_chunk_ratio": round(float(np.median([a / b for a, b in zip(ours, peer)])), 3),
        "chunk_ratios": [round(a / b, 3) for a, b in zip(ours, peer)],
        "adversarial_model_over_clean": round(epoch["adversarial_model_fit"] / epoch["clean_fit"], 2),
        "plain_over_clean": round(epoch["plain_tf_function_loop"] / epoch["clean_fit"], 2),
        "load_average_before_after": [round(v, 2) for v in (load_before[0], os.getloadavg()[0])],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,resnet20")
    parser.add_argument("--xla", default="off,on")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip_art", action="store_true")
    parser.add_argument("--epoch_vs_plain", action="store_true",
                        help="time epochs of AdversarialModel.fit against a plain tf.function PGD loop")
    parser.add_argument("--mnist", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                                                        "mnist.npz"))
    parser.add_argument("--epoch_steps", type=int, default=200)
    parser.add_argument("--pgd_steps", type=int, default=10)
    parser.add_argument("--chunk_steps", type=int, default=10)
    args = parser.parse_args()
    if args.epoch_vs_plain:
        for xla in args.xla.split(","):
            print(json.dumps(epoch_vs_plain(args.mnist, args.epoch_steps, args.pgd_steps, args.chunk_steps,
                                            xla=xla == "on")), flush=True)
        return
    use_art = available("art", not args.skip_art)
    for name in args.models.split(","):
        for xla in args.xla.split(","):
            # ART runs eagerly either way: time it once per model, on the XLA-off row.
            art_row = use_art and name == "lenet5" and xla == "off"
            print(json.dumps(bench(name, xla == "on", args.repeats, art=art_row)), flush=True)


if __name__ == "__main__":
    main()
