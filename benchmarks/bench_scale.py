"""The GPU-path figures of docs/SCALE.md: PGD-k step vs (k+1) clean steps with XLA and mixed
precision on/off, and a short ResNet-20 PGD training throughput (benchmarks/device_check.sh).

Rows ``step``: one model, one batch of 128 random images, ``--repeats`` interleaved rounds of
(k+1 clean ``train_on_batch``, one PGD-k ``AdversarialModel`` step) after warm-up, medians
(:func:`bench_adversarial_training.interleaved_seconds`); LeNet-5 (PGD-40, MNIST shapes) and
ResNet-20 (PGD-10, CIFAR shapes). Mixed precision uses the policy
``tfsparse.training.policy_name`` picks for the device (GPU mixed_float16, CPU mixed_bfloat16).
Row ``throughput``: ``--throughput_steps`` PGD-10 training steps of ResNet-20 on batches of
128 through ``fit`` (the library's own path), images per second after one warm-up epoch.

    python benchmarks/bench_scale.py [--models=lenet5,resnet20] [--xla=off,on] [--mixed=off,on]
"""

import argparse
import json
import time

import numpy as np
from bench_adversarial_training import SETTINGS
from bench_adversarial_training import interleaved_seconds

import tfsparse  # noqa: F401  (before TensorFlow: selects tf_keras)
from tfsparse import models
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.training import AdversarialModel
from tfsparse.training import float32_logits
from tfsparse.training import precision_policy

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def step_row(name, xla, mixed, repeats, batch=128):
    s = SETTINGS[name]
    keras.utils.set_random_seed(0)
    x = np.random.rand(batch, *s["shape"]).astype(np.float32)
    y = np.random.randint(0, 10, batch)
    with precision_policy(mixed) as policy:
        clean = float32_logits(models.get(name)(10, s["shape"], 0.5, 0.25))
        clean.compile(keras.optimizers.SGD(0.01, momentum=0.9), LOSS, jit_compile=xla)
        adv = AdversarialModel(float32_logits(models.get(name)(10, s["shape"], 0.5, 0.25)), eps=s["eps"],
                               step_size=s["step_size"], steps=s["steps"])
        adv.compile(keras.optimizers.SGD(0.01, momentum=0.9), LOSS, jit_compile=xla)
        t_adv, t_clean = interleaved_seconds(clean, adv, x, y, s["steps"], repeats)
    return {"row": "step", "model": name, "xla": xla, "policy": policy, "batch": batch, "pgd_steps": s["steps"],
            "adv_step_s": round(t_adv, 4), "clean_step_s": round(t_clean, 5),
            "ratio_vs_k_plus_1_clean": round(t_adv / ((s["steps"] + 1) * t_clean), 3)}


def throughput_row(steps, xla, mixed, batch=128):
    s = SETTINGS["resnet20"]
    keras.utils.set_random_seed(0)
    x = np.random.rand(batch * steps, *s["shape"]).astype(np.float32)
    y = np.random.randint(0, 10, batch * steps)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).cache().prefetch(2)
    with precision_policy(mixed) as policy:
        adv = AdversarialModel(float32_logits(models.get("resnet20")(10, s["shape"], 0.5, 0.25)), eps=s["eps"],
                               step_size=s["step_size"], steps=s["steps"])
        adv.compile(keras.optimizers.SGD(0.1, momentum=0.9), LOSS, jit_compile=xla)
        adv.fit(data, epochs=1, verbose=0)  # warm-up: tracing and compilation
        start = time.perf_counter()
        adv.fit(data, epochs=1, verbose=0)
        seconds = time.perf_counter() - start
    return {"row": "throughput", "model": "resnet20", "xla": xla, "policy": policy, "batch": batch,
            "pgd_steps": s["steps"], "steps": steps, "seconds": round(seconds, 2),
            "images_per_s": round(batch * steps / seconds, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,resnet20")
    parser.add_argument("--xla", default="off,on")
    parser.add_argument("--mixed", default="off,on")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--throughput_steps", type=int, default=50, help="0 skips the throughput row")
    args = parser.parse_args()
    print(json.dumps({"devices": [d.name for d in tf.config.list_logical_devices()]}), flush=True)
    for name in filter(None, args.models.split(",")):
        for xla in args.xla.split(","):
            for mixed in args.mixed.split(","):
                print(json.dumps(step_row(name, xla == "on", mixed == "on", args.repeats)), flush=True)
    if args.throughput_steps:
        gpu = bool(tf.config.list_logical_devices("GPU"))
        print(json.dumps(throughput_row(args.throughput_steps, gpu, gpu)), flush=True)


if __name__ == "__main__":
    main()
