"""What pruning buys in shipped artifacts: bytes, gzip bytes and TFLite latency, dense vs pruned.

One trained model (``--model``, a Keras file or SavedModel; without it LeNet-5 is trained for
``--epochs`` on MNIST as ``bench_attacks.py`` trains it) is exported by
``tfsparse.export.export`` as itself (dense), pruned without retraining to ``--sparsity`` of its
weights by one global magnitude threshold (``prune_with("threshold")``: GUP's mask, applied at
once, real zeros) and filter-pruned (FP, Li et al. 2017: the model
rebuilt physically narrower) at each of ``--fp_sparsity``. Sizes and latencies do not depend on
retraining; the agreement columns do (they compare each artifact with its own source model).

Printed per variant and format: bytes on disk, gzip bytes and their ratio to the dense
model's same format, non-zero parameters, FLOPs, and the TFLite interpreter's median latency at
batch 1 (``--threads``, ``--latency_runs``) with its ratio to dense. Ideals in the same run:
gzip — the bytes of the non-zero float32 values alone (no index, no other bytes); latency —
the FLOPs ratio (a kernel whose time scales with multiply-accumulates). Targets (issue 15):
90 %-sparse gzip ≤ 40 % of dense; gzipped int8 TFLite of the 90 %-sparse model ≤ 15 % of the
dense float32 TFLite's bytes; an FP model ≥ 2× faster than dense in TFLite at batch 1.

Command (2 CPU cores, ~3 min)::

    python benchmarks/bench_export.py --data=../shared/data/mnist.npz --epochs=1 \
        --output=/tmp/bench_export.json
"""

import argparse
import json
import os
import tempfile

from bench_attacks import get_model
from bench_attacks import load_mnist

import tfsparse  # noqa: F401  (before anything TF: selects tf_keras)
from tfsparse import export
from tfsparse import sparsity

FORMATS = ("saved_model", "tflite", "tflite_int8")


def variants(model, args):
    """``{name: model}``: dense, global magnitude at ``--sparsity``, FP at each ``--fp_sparsity``."""
    found = {"dense": model}
    found[f"mag {args.sparsity:.0%}"] = sparsity.strip(sparsity.prune_with("threshold", model, args.sparsity))
    for fraction in args.fp_sparsity:
        found[f"fp {fraction:.0%}"] = sparsity.prune_with("fp", model, fraction)
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="mnist.npz")
    parser.add_argument("--model", default=None, help="trained Keras model (default: train LeNet-5)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--fp_sparsity", type=float, nargs="+", default=[0.5, 0.75])
    parser.add_argument("--latency_runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=None, help="JSON file for the figures")
    args = parser.parse_args()
    args.model_paths = {"lenet5": args.model} if args.model else {}
    args.save_models = None

    x_train, y_train, x_test, _ = load_mnist(args.data)
    model, note = get_model("lenet5", args, x_train, y_train)
    print(f"lenet5: {note}", flush=True)
    reports = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, variant in variants(model, args).items():
            reports[name] = export.export(
                variant, os.path.join(folder, name.replace(" ", "_").replace("%", "")), FORMATS,
                representative_data=x_train[:200], check_inputs=x_test[:500], latency_runs=args.latency_runs,
                threads=args.threads, sparse_tflite=True)
    dense = reports["dense"]
    print(f"\n{'variant':<10} {'format':<13} {'bytes':>10} {'gzip':>10} {'gzip/dense':>10} {'ideal':>7} "
          f"{'non-zero':>9} {'MFLOPs':>7} {'ms b=1':>7} {'dense/ms':>9} {'FLOPs x':>8}")
    figures = {}
    for name, report in reports.items():
        for fmt, entry in report["formats"].items():
            if "bytes" not in entry:
                print(f"{name:<10} {fmt:<13} not produced: {entry.get('error')}")
                continue
            base = dense["formats"].get(fmt, {})
            latency = (entry.get("latency_ms") or {}).get("median")
            base_latency = (base.get("latency_ms") or {}).get("median")
            row = {
                "bytes": entry["bytes"], "gzip_bytes": entry["gzip_bytes"],
                "gzip_vs_dense": entry["gzip_bytes"] / base["gzip_bytes"] if base else None,
                "ideal_gzip_vs_dense": entry["nonzero_params"] / dense["source"]["params"],
                "nonzero_params": entry["nonzero_params"], "flops": entry["flops"], "latency_ms": latency,
                "speedup": base_latency / latency if latency and base_latency else None,
                "ideal_speedup": dense["source"]["flops"] / entry["flops"],
            }
            figures[f"{name} / {fmt}"] = row

            def cell(value, fmt_):
                return format(value, fmt_) if value is not None else "-"

            print(f"{name:<10} {fmt:<13} {row['bytes']:>10,} {row['gzip_bytes']:>10,} "
                  f"{cell(row['gzip_vs_dense'], '>10.3f')} {row['ideal_gzip_vs_dense']:>7.3f} "
                  f"{row['nonzero_params']:>9,} {row['flops'] / 1e6:>7.2f} {cell(latency, '>7.3f')} "
                  f"{cell(row['speedup'], '>9.2f')} {row['ideal_speedup']:>8.2f}")
    sparse_name = f"mag {args.sparsity:.0%}"
    int8_ratio = reports[sparse_name]["formats"]["tflite_int8"]["gzip_bytes"] / dense["formats"]["tflite"]["bytes"]
    print(f"\ntargets: {sparse_name} gzip / dense gzip — saved_model "
          f"{figures[sparse_name + ' / saved_model']['gzip_vs_dense']:.3f}, tflite "
          f"{figures[sparse_name + ' / tflite']['gzip_vs_dense']:.3f} (target <= 0.40); "
          f"gzipped int8 TFLite / dense float32 TFLite bytes {int8_ratio:.3f} (target <= 0.15); "
          + ", ".join(f"{n} speed-up {figures[n + ' / tflite']['speedup']:.2f}x" for n in reports if n.startswith("fp"))
          + " (target >= 2)")
    if reports[sparse_name]["formats"].get("tflite_sparse"):
        print("TFLite sparse path (Optimize.EXPERIMENTAL_SPARSITY):",
              json.dumps(reports[sparse_name]["formats"]["tflite_sparse"], default=str))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump({"model": note, "threads": args.threads, "latency_runs": args.latency_runs,
                       "figures": figures, "int8_gzip_vs_dense_tflite": int8_ratio, "reports": reports},
                      handle, indent=1, default=str)


if __name__ == "__main__":
    main()
