"""Our AutoAttack against the reference implementation (fra31/auto-attack, PyTorch), side by side.

The done-when of issue 31 item 5: on the same model and the same first N MNIST test images, our
``attacks.AutoAttack`` (standard version: APGD-CE, APGD-T, FAB-T, Square; 100 iterations, 9
target classes, 5,000 queries) gives the reference's robust accuracy (within 0.2 percentage
points, never above it by more) in at most half its time.

One command runs both. The Keras model (a tf_keras LeNet-5 or any chain of Normalize / Conv2D
/ MaxPooling2D / Flatten / Dense / ReLU layers) is exported layer by layer to an equivalent
``torch.nn`` model (kernels transposed; NHWC→NCHW at the input and back before ``Flatten``, so
the flattening order is Keras'), and the reference runs in a second Python that has PyTorch and
``autoattack`` (``--reference_python``, e.g. a separate venv: PyTorch is not one of tfsparse's
dependencies) on the same images; that process first checks that the torch logits equal the
Keras ones (max abs difference ≤ 1e-4 relative to the largest logit), then times
``AutoAttack(model, norm="Linf", eps=ε, version="standard", seed=0, device="cpu")
.run_standard_evaluation(x, y, bs=--batch, return_labels=True)`` (its sanity checks included,
as a user runs it) and reads its per-stage lines ("robust accuracy after APGD-CE: …").
Ours runs in this process: ``AutoAttack(eps=ε, jit_compile=False).run(model, x, y,
batch_size=--batch, seed=0)``, timed cold (the first call: tracing included, what a user pays
once per model) and warm (a second call with the same seed; it must give the same result).

Printed and written to ``--output``: per stage the robust accuracy and seconds of both, the
total times and ratios ours/reference (cold and warm), the robust accuracies and their
difference in percentage points, the per-image agreement of the robust flags, whether the
done-when holds, torch/TF versions, thread counts and the load average before and after.

Command (docs/BENCHMARKS.md)::

    python benchmarks/bench_autoattack_reference.py --model=/tmp/aa/models/lenet5_pgd/model.keras \
        --data=../shared/data/mnist.npz --num_examples=1000 --eps=0.3 \
        --reference_python=../bench-venv/bin/python --output=/tmp/bench_autoattack_reference.json

Without a ``--reference_python`` that can import ``torch`` and ``autoattack`` it says so and
runs ours only.
"""

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
from bench_attacks import SHARED_MNIST

STAGES = ("APGD-CE", "APGD-T", "FAB-T", "Square")
# The reference's attack names as its log prints them (``attack.upper()``).
REFERENCE_STAGES = {"APGD-CE": "APGD-CE", "APGD-T": "APGD-T", "FAB-T": "FAB-T", "SQUARE": "Square"}
TOLERANCE_PP = 0.2
TIME_RATIO = 0.5


# --- Keras side (this process) --------------------------------------------------------------------


def export_layers(model):
    """The model as ``[(kind, config, arrays)]`` a torch twin is built from; ValueError on others."""
    layers = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        weights = [np.asarray(w, np.float32) for w in layer.get_weights()]
        activation = getattr(layer, "activation", None)
        activation = getattr(activation, "__name__", "linear")
        if activation not in ("linear", "relu"):
            raise ValueError(f"layer {layer.name}: activation {activation} has no torch twin here")
        if kind == "Normalize":
            layers.append(("normalize", {"mean": layer.mean, "std": layer.std}, []))
        elif kind == "Conv2D":
            if tuple(layer.dilation_rate) != (1, 1) or layer.groups != 1:
                raise ValueError(f"layer {layer.name}: dilated or grouped convolutions are not exported")
            kernel = weights[0].transpose(3, 2, 0, 1)  # HWIO -> OIHW
            layers.append(("conv", {"strides": list(layer.strides), "padding": layer.padding,
                                    "activation": activation}, [kernel] + weights[1:]))
        elif kind == "MaxPooling2D":
            layers.append(("maxpool", {"pool": list(layer.pool_size), "strides": list(layer.strides),
                                       "padding": layer.padding}, []))
        elif kind == "Flatten":
            layers.append(("flatten", {}, []))
        elif kind == "Dense":
            layers.append(("dense", {"activation": activation}, [weights[0].T] + weights[1:]))
        elif kind == "ReLU":
            layers.append(("relu", {}, []))
        else:
            raise ValueError(f"layer {layer.name} ({kind}) has no torch twin in this benchmark")
        if layers[-1][1].get("padding") not in (None, "valid"):
            raise ValueError(f"layer {layer.name}: only 'valid' padding is exported")
    return layers


def write_handoff(path, layers, x, y, logits, args):
    arrays = {"x": x.transpose(0, 3, 1, 2), "y": y, "logits": logits}
    spec = []
    for i, (kind, config, weights) in enumerate(layers):
        names = []
        for j, w in enumerate(weights):
            arrays[f"w{i}_{j}"] = w
            names.append(f"w{i}_{j}")
        spec.append({"kind": kind, "config": config, "weights": names})
    arrays["spec"] = np.array(json.dumps({"layers": spec, "eps": args.eps, "batch": args.batch,
                                          "seed": args.seed}))
    np.savez(path, **arrays)


def run_ours(model, x, y, args):
    from tfsparse import attacks

    attack = attacks.AutoAttack(eps=args.eps, norm="linf", version="standard", jit_compile=False)
    runs = []
    for label in ("cold", "warm"):
        start, cpu = time.perf_counter(), time.process_time()
        result = attack.run(model, x, y, batch_size=args.batch, seed=args.seed)
        runs.append(dict(label=label, seconds=time.perf_counter() - start,
                         cpu_seconds=time.process_time() - cpu, result=result))
        print(f"ours ({label}): robust accuracy {result.adv_accuracy:.2%} in "
              f"{runs[-1]['seconds']:.1f} s; " + ", ".join(
                  f"{s['name']} {s['robust_accuracy']:.2%} {s['seconds']:.1f} s" for s in result.stages),
              flush=True)
    cold, warm = (r["result"] for r in runs)
    same = bool(np.array_equal(cold.adv_correct, warm.adv_correct))
    return cold, runs, same


def reference_available(python):
    if not python:
        return False
    check = subprocess.run([python, "-c", "import torch, autoattack"], capture_output=True, text=True)
    if check.returncode:
        print(f"{python} cannot import torch and autoattack: the reference column is skipped "
              f"({check.stderr.strip().splitlines()[-1] if check.stderr.strip() else 'no output'})",
              flush=True)
    return check.returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="Keras model file or SavedModel dir (logits out)")
    parser.add_argument("--data", default=SHARED_MNIST)
    parser.add_argument("--num_examples", type=int, default=1000, help="the first N test images")
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference_python", default="",
                        help="a Python that imports torch and autoattack (fra31/auto-attack)")
    parser.add_argument("--skip_ours", action="store_true", help="run the reference only")
    parser.add_argument("--output", default="/tmp/bench_autoattack_reference.json")
    parser.add_argument("--reference_handoff", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_handoff:  # the second process: PyTorch and the reference only
        reference_main(args.reference_handoff)
        return

    import tfsparse  # noqa: F401  (before anything TF: selects tf_keras)
    from tfsparse import model_io
    from tfsparse.compat import tf

    load_before = os.getloadavg()
    with np.load(args.data) as data:
        x = (data["x_test"][:args.num_examples].astype(np.float32) / 255.0)[..., None]
        y = data["y_test"][:args.num_examples].astype(np.int32)
    model = model_io.load_model(args.model)
    logits = np.concatenate([np.asarray(model(x[s:s + args.batch], training=False))
                             for s in range(0, len(x), args.batch)])
    record = dict(command=vars(args), n=len(x), tf=tf.__version__, tf_threads=dict(
        intra=tf.config.threading.get_intra_op_parallelism_threads(),
        inter=tf.config.threading.get_inter_op_parallelism_threads()), cpus=os.cpu_count(),
        load_before=load_before, clean_accuracy=float(np.mean(np.argmax(logits, 1) == y)))
    print(f"{len(x)} images, clean accuracy {record['clean_accuracy']:.2%}, eps {args.eps}; "
          f"load average {load_before}", flush=True)
    reference = None
    if reference_available(args.reference_python):
        with tempfile.TemporaryDirectory() as tmp:
            handoff = os.path.join(tmp, "handoff.npz")
            write_handoff(handoff, export_layers(model), x, y, logits, args)
            out = subprocess.run([args.reference_python, os.path.abspath(__file__),
                                  "--model=-", f"--reference_handoff={handoff}"],
                                 stdout=subprocess.PIPE, text=True)  # its log: on stderr, live
            if out.returncode:
                raise SystemExit(f"the reference run failed (exit {out.returncode}; see above)")
            reference = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"reference: robust accuracy {reference['robust_accuracy']:.2%} in "
              f"{reference['seconds']:.1f} s; " + ", ".join(
                  f"{s['name']} {s['robust_accuracy']:.2%} {s['seconds']:.1f} s"
                  for s in reference["stages"]), flush=True)
        record["reference"] = {k: v for k, v in reference.items() if k != "robust"}
    if not args.skip_ours:
        result, runs, same = run_ours(model, x, y, args)
        cold_s, warm_s = runs[0]["seconds"], runs[1]["seconds"]
        record["ours"] = dict(robust_accuracy=result.adv_accuracy, seconds_cold=cold_s,
                              seconds_warm=warm_s, cpu_seconds_cold=runs[0]["cpu_seconds"],
                              cpu_seconds_warm=runs[1]["cpu_seconds"], warm_equals_cold=same,
                              stages=[dict(s) for s in result.stages])
        if reference is not None:
            ref_robust = np.asarray(reference["robust"], bool)
            ours_robust = result.adv_correct
            diff_pp = 100 * (result.adv_accuracy - reference["robust_accuracy"])
            record["comparison"] = dict(
                robust_accuracy_diff_pp=diff_pp,
                agreement=float(np.mean(ours_robust == ref_robust)),
                robust_ours_only=int(np.sum(ours_robust & ~ref_robust)),
                robust_reference_only=int(np.sum(~ours_robust & ref_robust)),
                ratio_cold=cold_s / reference["seconds"], ratio_warm=warm_s / reference["seconds"],
                cpu_ratio_cold=runs[0]["cpu_seconds"] / reference["cpu_seconds"],
                accuracy_ok=bool(abs(diff_pp) <= TOLERANCE_PP or diff_pp < 0),
                time_ok_cold=bool(cold_s <= TIME_RATIO * reference["seconds"]))
            print_table(record)
    record["load_after"] = os.getloadavg()
    print(f"load average after {record['load_after']}")
    if args.output:
        with open(args.output, "w") as f:
            json.dump(record, f, indent=1)


def print_table(record):
    ours, ref, comp = record["ours"], record["reference"], record["comparison"]
    print("\n| stage | ours robust acc | ours s (cold run) | reference robust acc | reference s |")
    print("|---|---|---|---|---|")
    by_name = {s["name"]: s for s in ref["stages"]}
    for stage in ours["stages"]:
        other = by_name.get(stage["name"], {})
        print(f"| {stage['name']} | {stage['robust_accuracy']:.2%} | {stage['seconds']:.1f} | "
              f"{other.get('robust_accuracy', float('nan')):.2%} | {other.get('seconds', float('nan')):.1f} |")
    print(f"| total | {ours['robust_accuracy']:.2%} | {ours['seconds_cold']:.1f} (warm "
          f"{ours['seconds_warm']:.1f}) | {ref['robust_accuracy']:.2%} | {ref['seconds']:.1f} |")
    print(f"\nours − reference: {comp['robust_accuracy_diff_pp']:+.2f} pp; per-image agreement "
          f"{comp['agreement']:.2%} (robust for ours only: {comp['robust_ours_only']}, for the "
          f"reference only: {comp['robust_reference_only']}); time ours/reference "
          f"{comp['ratio_cold']:.2f} cold, {comp['ratio_warm']:.2f} warm (CPU time "
          f"{comp['cpu_ratio_cold']:.2f} cold); done-when: accuracy "
          f"{'ok' if comp['accuracy_ok'] else 'NOT met'}, time {'ok' if comp['time_ok_cold'] else 'NOT met'}")


# --- reference side (the PyTorch process; imports neither TensorFlow nor tfsparse) ---------------


def torch_twin(spec, arrays):
    import torch
    import torch.nn.functional as F

    class Twin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.steps = []
            for i, layer in enumerate(spec["layers"]):
                params = [torch.nn.Parameter(torch.from_numpy(arrays[name]), requires_grad=False)
                          for name in layer["weights"]]
                for j, p in enumerate(params):
                    self.register_parameter(f"p{i}_{j}", p)
                self.steps.append((layer["kind"], layer["config"], params))

        def forward(self, x):
            x = x.permute(0, 2, 3, 1)  # the reference hands NCHW; Keras' layers run NHWC
            for kind, config, params in self.steps:
                if kind == "normalize":
                    mean = torch.tensor(config["mean"], dtype=x.dtype)
                    x = (x - mean) / torch.tensor(config["std"], dtype=x.dtype)
                elif kind == "conv":
                    x = F.conv2d(x.permute(0, 3, 1, 2), params[0], params[1] if len(params) > 1 else None,
                                 stride=config["strides"]).permute(0, 2, 3, 1)
                elif kind == "maxpool":
                    x = F.max_pool2d(x.permute(0, 3, 1, 2), config["pool"],
                                     stride=config["strides"]).permute(0, 2, 3, 1)
                elif kind == "flatten":
                    x = x.reshape(x.shape[0], -1)  # NHWC order, as Keras flattens
                elif kind == "dense":
                    x = F.linear(x, params[0], params[1] if len(params) > 1 else None)
                if kind == "relu" or config.get("activation") == "relu":
                    x = F.relu(x)
            return x

    return Twin().eval()


def reference_main(handoff):
    import torch
    from autoattack import AutoAttack

    with np.load(handoff) as data:
        arrays = {k: data[k] for k in data.files}
    spec = json.loads(str(arrays.pop("spec")))
    model = torch_twin(spec, arrays)
    x, y = torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["y"].astype(np.int64))
    with torch.no_grad():
        logits = torch.cat([model(x[s:s + 500]) for s in range(0, len(x), 500)]).numpy()
    max_diff = float(np.abs(logits - arrays["logits"]).max())
    scale = float(np.abs(arrays["logits"]).max())
    if not max_diff <= 1e-4 * max(scale, 1.0):
        raise SystemExit(f"torch twin logits differ from Keras': max abs diff {max_diff} (scale {scale})")
    with tempfile.TemporaryDirectory() as tmp:
        log_path = os.path.join(tmp, "log.txt")
        adversary = AutoAttack(model, norm="Linf", eps=spec["eps"], version="standard",
                               seed=spec["seed"], device="cpu", log_path=log_path)
        start, cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(sys.stderr):  # its log lines; stdout carries the JSON
            _, y_adv = adversary.run_standard_evaluation(x, y, bs=spec["batch"], return_labels=True)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        with open(log_path) as f:
            log = f.read()
    stages, previous = [], 0.0
    # "robust accuracy after APGD-CE: 91.00% (total time 12.3 s)": cumulative times.
    for name, accuracy, total in re.findall(r"robust accuracy after ([\w-]+): ([\d.]+)% \(total time ([\d.]+) s\)", log):
        stages.append({"name": REFERENCE_STAGES.get(name, name), "robust_accuracy": float(accuracy) / 100,
                       "seconds": float(total) - previous})
        previous = float(total)
    robust = (y_adv.numpy() == arrays["y"]).tolist()
    import autoattack

    print(json.dumps({"robust_accuracy": float(np.mean(robust)), "seconds": seconds,
                      "cpu_seconds": cpu_seconds, "stages": stages,
                      "robust": robust, "logits_max_abs_diff": max_diff, "torch": torch.__version__,
                      "torch_threads": torch.get_num_threads(), "autoattack": autoattack.__file__,
                      "log": log.splitlines()}))


if __name__ == "__main__":
    sys.exit(main())
