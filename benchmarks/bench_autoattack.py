"""APGD-CE, APGD-DLR and AutoAttack: wall time and robust accuracy vs the ideal cost and IBM ART.

LeNet-5, trained as ``bench_attacks.py`` trains it (or loaded with ``--model``), attacked in l∞
at ε 0.1 and 0.3 with 100 iterations, on the first ``--num_examples`` MNIST test images (APGD)
and the first ``--aa_examples`` (AutoAttack). Every figure is taken in the same process, on the
same model and images, no XLA (``jit_compile=False``):

  * ours: ``attacks.APGD(loss="ce" | "dlr", steps=100, restarts=1)`` and
    ``attacks.AutoAttack(version="standard", steps=100)`` in batches of ``--batch`` after one
    warm-up (tracing) call, median of ``--repeats`` timed calls;
  * ideal: APGD: 100 × one batched forward+backward pass over the same images (median of 3);
    AutoAttack: the sum over its components of their passes over the points each component
    was actually handed (APGD-CE 100, APGD-T 9 × 100 and FAB-T 9 × 100 forward+backward passes,
    Square 5,000 forward-only passes per point), the pass times scaled linearly with the points.
    Components stop early on fooled points, so the AutoAttack ideal is an upper estimate;
  * ART: ``AutoProjectedGradientDescent`` (``loss_type`` cross_entropy / difference_logits_ratio,
    ``max_iter=100``, ``nb_random_init=1``, ``eps_step=2ε`` — APGD's initial step — batch
    ``--batch``) run once on ``TensorFlowV2Classifier`` wrapping the same Keras model; ART's
    ``AutoAttack`` (its default ensemble: APGD-CE and APGD-DLR with 5 random starts each,
    DeepFool, Square with 5 restarts — not the same ensemble as ours) once, at the ε values of
    ``--art_aa_eps`` only (``--art_aa_eps=`` skips it: on 2 CPU cores it takes ~5 s per image).

Robust accuracy is measured the same way for all, by re-classifying the returned images
(``bench_attacks.summarize``), and every perturbation is checked to lie in the ε-ball.

Command (2 shared CPU cores: 13 min, training included)::

    python benchmarks/bench_autoattack.py --data=/work/shared/data/mnist.npz \
        --save_models=/tmp/bench_models_aa --num_examples=1000 --aa_examples=100 \
        --art_aa_eps=0.3 --output=/tmp/bench_autoattack.json

then ART's AutoAttack at ε 0.1 on the saved model (the ε at which it has work to do)::

    python benchmarks/bench_autoattack.py --data=/work/shared/data/mnist.npz \
        --model=/tmp/bench_models_aa/lenet5.h5 --attacks=autoattack --eps=0.1 \
        --aa_examples=100 --art_aa_eps=0.1 --output=/tmp/bench_autoattack_aa01.json
"""

import argparse
import json
import os
import statistics
import time

import numpy as np
from _peers import available
from bench_attacks import art_classifier
from bench_attacks import get_model
from bench_attacks import load_mnist
from bench_attacks import make_pass
from bench_attacks import predict
from bench_attacks import summarize
from bench_attacks import timed

import tfsparse  # noqa: F401  (before anything TF: selects tf_keras)
from tfsparse import attacks
from tfsparse.compat import tf

STEPS = 100
N_TARGET = 9
SQUARE_QUERIES = 5000


def make_forward(model, batch):
    """One batched forward pass (Square's query), no XLA."""

    @tf.function(jit_compile=False,
                 input_signature=[tf.TensorSpec((None, 28, 28, 1), tf.float32)])
    def forward(x):
        return model(x, training=False)

    def run(x):
        for s in range(0, len(x), batch):
            forward(tf.constant(x[s:s + batch])).numpy()

    return run


def median_time(fn, repeats):
    """One warm-up call, then the median of ``repeats`` timed calls, and the last output."""
    out = fn()
    times = []
    for _ in range(repeats):
        seconds, out = timed(fn)
        times.append(seconds)
    return statistics.median(times), out


class CountingAutoAttack(attacks.AutoAttack):
    """Our AutoAttack, recording how many points each component is handed (for the ideal)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        object.__setattr__(self, "handed", {})

    def components(self):
        comps = super().components()
        for comp in comps:
            original = comp._attack_batch
            label = type(comp).__name__ + ("-" + comp.params["loss"].upper()
                                           if "loss" in comp.params else "")

            def counted(model, x, y, seed_pair, _original=original, _label=label):
                self.handed[_label] = self.handed.get(_label, 0) + len(x)
                return _original(model, x, y, seed_pair)

            object.__setattr__(comp, "_attack_batch", counted)
        return comps


def linf_ok(x, x_adv, eps):
    return bool(np.abs(x_adv - x).max() <= eps + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1)


def bench_apgd(model, x, y, eps, loss, args, classifier, pass_s, rows):
    ours = attacks.APGD(eps=eps, loss=loss, steps=STEPS, restarts=1, jit_compile=False)
    ours_t, res = median_time(lambda: ours.run(model, x, y, batch_size=args.batch, seed=0),
                              args.repeats)
    ideal = STEPS * pass_s
    r = dict(attack=f"APGD-{loss.upper()} eps={eps}", n=len(x), ours_s=round(ours_t, 2),
             ideal_s=round(ideal, 2), ours_over_ideal=round(ours_t / ideal, 3),
             ours=summarize(model, x, y, res.x_adv), ours_in_ball=linf_ok(x, res.x_adv, eps),
             pass_s=round(pass_s, 4))
    if classifier is not None:
        from art.attacks.evasion import AutoProjectedGradientDescent

        art = AutoProjectedGradientDescent(
            classifier, norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=STEPS,
            nb_random_init=1, batch_size=args.batch, verbose=False,
            loss_type="cross_entropy" if loss == "ce" else "difference_logits_ratio")
        art_t, x_adv = timed(lambda: art.generate(x, np.eye(10, dtype=np.float32)[y]))
        r.update(art_s=round(art_t, 2), art=summarize(model, x, y, x_adv),
                 art_in_ball=linf_ok(x, x_adv, eps), art_over_ours=round(art_t / ours_t, 2))
    rows.append(r)
    print(json.dumps(r), flush=True)


def bench_autoattack(model, x, y, eps, args, classifier, pass_s, fwd_s, rows):
    ours = CountingAutoAttack(eps=eps, steps=STEPS, n_target_classes=N_TARGET,
                              square_queries=SQUARE_QUERIES, jit_compile=False)
    ours_t, res = median_time(lambda: ours.run(model, x, y, batch_size=args.batch, seed=0),
                              args.repeats)
    calls = 1 + args.repeats  # the counts add up over the warm-up and the timed calls
    handed = {k: v // calls for k, v in ours.handed.items()}
    per_point = {"APGD-CE": STEPS * pass_s, "APGDT": N_TARGET * STEPS * pass_s,
                 "FABT": N_TARGET * STEPS * pass_s, "Square": SQUARE_QUERIES * fwd_s}
    parts = {k: handed[k] / len(x) * per_point[k] for k in handed}
    ideal = sum(parts.values())
    r = dict(attack=f"AutoAttack eps={eps}", n=len(x), ours_s=round(ours_t, 2),
             ideal_s=round(ideal, 2), ours_over_ideal=round(ours_t / ideal, 3),
             ours=summarize(model, x, y, res.x_adv), ours_in_ball=linf_ok(x, res.x_adv, eps),
             points_per_component=handed,
             ideal_parts_s={k: round(v, 2) for k, v in parts.items()},
             pass_s=round(pass_s, 4), forward_s=round(fwd_s, 4))
    if classifier is not None and eps in args.art_aa_eps:
        from art.attacks.evasion import AutoAttack as ArtAutoAttack

        art = ArtAutoAttack(classifier, norm=np.inf, eps=eps, eps_step=2 * eps,
                            batch_size=args.batch)
        art_t, x_adv = timed(lambda: art.generate(x, np.eye(10, dtype=np.float32)[y]))
        r.update(art_s=round(art_t, 2), art=summarize(model, x, y, x_adv),
                 art_in_ball=linf_ok(x, x_adv, eps), art_over_ours=round(art_t / ours_t, 2))
    rows.append(r)
    print(json.dumps(r), flush=True)


def fmt(value, spec="{:.2f}"):
    return "—" if value is None else spec.format(value)


def print_table(results):
    """The results as one Markdown table (the layout of docs/BENCHMARKS.md)."""
    print(f"\nlenet5 ({results['note']}; clean acc {results['clean_accuracy']:.4f} on the first "
          f"{results['command']['num_examples']} test images)\n")
    header = ("attack", "images", "ours s", "ideal s", "ours/ideal", "ART s", "ART/ours",
              "ours robust acc", "ART robust acc")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in results["rows"]:
        print("| " + " | ".join([
            r["attack"], str(r["n"]), fmt(r["ours_s"]), fmt(r["ideal_s"]),
            fmt(r["ours_over_ideal"]), fmt(r.get("art_s")), fmt(r.get("art_over_ours"), "{:.1f}×"),
            f"{r['ours']['adv_accuracy']:.3f}",
            fmt(r.get("art", {}).get("adv_accuracy"), "{:.3f}")]) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/work/shared/data/mnist.npz")
    parser.add_argument("--model", default="", help="a saved Keras LeNet-5 to attack instead")
    parser.add_argument("--save_models", default="", help="directory to save the trained model to")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--num_examples", type=int, default=1000, help="images for APGD")
    parser.add_argument("--aa_examples", type=int, default=100, help="images for AutoAttack")
    parser.add_argument("--eps", default="0.1,0.3")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip_art", action="store_true")
    parser.add_argument("--art_aa_eps", default="0.3",
                        help="ε values at which ART's (slow) AutoAttack runs; empty: none")
    parser.add_argument("--attacks", default="apgd,autoattack")
    parser.add_argument("--output", default="/tmp/bench_autoattack.json")
    parser.add_argument("--table", default="", help="only print the table of this results file")
    args = parser.parse_args()
    if args.table:
        with open(args.table) as f:
            print_table(json.load(f))
        return
    args.eps = [float(e) for e in args.eps.split(",")]
    args.art_aa_eps = [float(e) for e in args.art_aa_eps.split(",") if e]
    args.attacks = args.attacks.split(",")
    args.model_paths = {"lenet5": args.model} if args.model else {}
    data = load_mnist(args.data)
    model, note = get_model("lenet5", args, data[0], data[1])
    x_test, y_test = data[2], data[3]
    n, m = args.num_examples, args.aa_examples
    x, y = x_test[:n], y_test[:n]
    clean_acc = float(np.mean(predict(model, x) == y))
    print(f"== lenet5: {note}; clean accuracy {clean_acc:.4f} on {n} test images", flush=True)
    classifier = art_classifier(model) if available("art", not args.skip_art) else None
    results = dict(command=vars(args), note=note, clean_accuracy=clean_acc,
                   load_before=os.getloadavg(), cpus=os.cpu_count(), tf=tf.__version__, rows=[])
    if classifier is not None:
        import art

        results["art"] = art.__version__
    one_pass = make_pass(model)  # batches of bench_attacks.BATCH (500)
    forward = make_forward(model, args.batch)
    start = time.perf_counter()

    def save():
        results["load_after"] = os.getloadavg()
        results["wall_s"] = round(time.perf_counter() - start, 1)
        if args.output:
            os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
            with open(args.output, "w") as f:
                json.dump(results, f, indent=1, default=float)

    if "apgd" in args.attacks:
        pass_s, _ = median_time(lambda: one_pass(x, y), 3)
        for eps in args.eps:
            for loss in ("ce", "dlr"):
                bench_apgd(model, x, y, eps, loss, args, classifier, pass_s, results["rows"])
                save()
    if "autoattack" in args.attacks:
        xa, ya = x_test[:m], y_test[:m]
        pass_s, _ = median_time(lambda: one_pass(xa, ya), 3)
        fwd_s, _ = median_time(lambda: forward(xa), 3)
        for eps in args.eps:
            bench_autoattack(model, xa, ya, eps, args, classifier, pass_s, fwd_s,
                             results["rows"])
            save()
    save()
    print_table(results)
    print(f"\nwall {results['wall_s']} s; load average before {results['load_before']}, "
          f"after {results['load_after']}")


if __name__ == "__main__":
    main()
