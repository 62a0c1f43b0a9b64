"""APGD-CE, APGD-DLR and AutoAttack: wall time and robust accuracy vs the ideal cost and IBM ART.

LeNet-5 and LeNet-300-100 (``--models``), trained as ``bench_attacks.py`` trains them (or loaded
with ``--model=NAME=PATH``), attacked in l∞ at ε 0.1 and 0.3 with 100 iterations, on the first
``--num_examples`` MNIST test images (APGD) and the first ``--aa_examples`` (AutoAttack). Every
figure is taken in the same process, on the same model and images, no XLA
(``jit_compile=False``):

  * ours: ``attacks.APGD(loss="ce" | "dlr", steps=100, restarts=1)`` and
    ``attacks.AutoAttack(version="standard", steps=100)`` in batches of ``--batch`` after one
    warm-up (tracing) call, median of ``--repeats`` timed calls;
  * ideal (the issue's): APGD: 100 × one batched forward+backward pass over the same images
    (median of 3); AutoAttack: the sum over its components of their budgets over the points each
    was handed (APGD-CE 100, APGD-T 9 × 100 and FAB-T 9 × 100 forward+backward passes, Square
    5,000 forward-only passes per point), pass times scaled linearly with the points;
  * work ideal: the model calls our attacks actually made (counted by :class:`RowCounter`;
    APGD stops iterating fooled points, so its calls shrink), each at the measured cost of one
    call of their mean size (forward+backward; forward only for Square) — what a loop with no
    overhead would cost for the same work, also per AutoAttack component;
  * ART: ``AutoProjectedGradientDescent`` (``loss_type`` cross_entropy / difference_logits_ratio,
    ``max_iter=100``, ``nb_random_init=1``, ``eps_step=2ε`` — APGD's initial step — batch
    ``--batch``) run once on ``TensorFlowV2Classifier`` wrapping the same Keras model; ART's
    ``AutoAttack`` (its default ensemble: APGD-CE and APGD-DLR with 5 random starts each,
    DeepFool, Square with 5 restarts — not the same ensemble as ours) once, at the ε values of
    ``--art_aa_eps`` only (``--art_aa_eps=`` skips it: on 2 CPU cores it takes ~5 s per image).

Robust accuracy is measured the same way for all, by re-classifying the returned images
(``bench_attacks.summarize``), and every perturbation is checked to lie in the ε-ball.

Command (the figures of docs/BENCHMARKS.md)::

    python benchmarks/bench_autoattack.py --data=../shared/data/mnist.npz \
        --save_models=/tmp/bench_models_aa --num_examples=1000 --aa_examples=100 \
        --art_aa_eps=0.1 --repeats=3 --output=/tmp/bench_autoattack.json

``--model=lenet5=/tmp/bench_models_aa/lenet5.h5`` (repeatable) attacks saved models instead.
"""

import argparse
import json
import os
import statistics
import time

import numpy as np
from _peers import available
from bench_attacks import SHARED_MNIST
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


class RowCounter(tf.Module):
    """The model as our attacks call it, counting its calls and their input rows.

    Our APGD stops iterating a point once it is fooled, so the passes it makes are fewer than
    100 over every image: calls and rows give the work actually done, for the work ideal.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.calls = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.rows = tf.Variable(0, dtype=tf.int64, trainable=False)

    def __call__(self, x, training=False):
        self.calls.assign_add(1)
        self.rows.assign_add(tf.cast(tf.shape(x)[0], tf.int64))
        return self.model(x, training=training)

    def counted(self, fn):
        """``fn()``'s output and the ``(calls, rows)`` it made of the model."""
        before = (int(self.calls.numpy()), int(self.rows.numpy()))
        out = fn()
        return out, (int(self.calls.numpy()) - before[0], int(self.rows.numpy()) - before[1])


def make_call_timer(model, x, y, calls=20):
    """``time(rows, forward_only)``: seconds of one model call on ``rows`` images (forward, or
    forward + input gradient), no XLA: ``calls`` calls in one in-graph loop (no Python dispatch
    between them, as inside our attacks), median of 3 after a warm-up, divided by ``calls``."""

    def call(xb, yb, forward_only):
        if forward_only:
            return tf.reduce_sum(model(xb, training=False))
        with tf.GradientTape() as tape:
            tape.watch(xb)
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                yb, model(xb, training=False)))
        return tf.reduce_sum(tape.gradient(loss, xb))

    def loop(forward_only):
        @tf.function(jit_compile=False, input_signature=[
            tf.TensorSpec((None, 28, 28, 1), tf.float32), tf.TensorSpec((None,), tf.int32)])
        def run(xb, yb):
            total = tf.constant(0.0)
            for _ in tf.range(calls):
                total += call(xb, yb, forward_only)
            return total

        return run

    loops = {True: loop(True), False: loop(False)}

    def time_call(rows, forward_only):
        index = np.arange(rows) % len(x)
        xb, yb = tf.constant(x[index]), tf.constant(y[index])
        seconds, _ = median_time(lambda: loops[forward_only](xb, yb).numpy(), 3)
        return seconds / calls

    return time_call


class CountingAutoAttack(attacks.AutoAttack):
    """Our AutoAttack, recording per component the points handed, the model calls and rows it
    made and the seconds it spent (summed over runs; cleared after the warm-up)."""

    def __init__(self, counter, **kwargs):
        super().__init__(**kwargs)
        object.__setattr__(self, "counter", counter)
        object.__setattr__(self, "parts", {})
        for comp in self.components():
            original = comp._attack_batch
            label = type(comp).__name__ + ("-" + comp.params["loss"].upper()
                                           if "loss" in comp.params else "")

            def counted(model, x, y, seed_pair, _original=original, _label=label):
                start = time.perf_counter()
                out, (calls, rows) = self.counter.counted(
                    lambda: _original(model, x, y, seed_pair))
                part = self.parts.setdefault(_label, dict(points=0, calls=0, rows=0, s=0.0))
                part["points"] += len(x)
                part["calls"] += calls
                part["rows"] += rows
                part["s"] += time.perf_counter() - start
                return out

            object.__setattr__(comp, "_attack_batch", counted)


def linf_ok(x, x_adv, eps):
    return bool(np.abs(x_adv - x).max() <= eps + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1)


def work_ideal(time_call, calls, rows, forward_only=False):
    """``calls`` model calls of ``rows / calls`` images each, at the measured cost of one."""
    return calls * time_call(max(1, round(rows / calls)), forward_only) if calls else 0.0


def bench_apgd(model, counter, time_call, x, y, eps, loss, args, classifier, pass_s, rows):
    ours = attacks.APGD(eps=eps, loss=loss, steps=STEPS, restarts=1, jit_compile=False)
    ours_t, (res, (calls, model_rows)) = median_time(
        lambda: counter.counted(lambda: ours.run(counter, x, y, batch_size=args.batch, seed=0)),
        args.repeats)
    ideal = STEPS * pass_s
    # The calls ours made (2 per batch the clean and final classification), each at the cost
    # of one forward+backward call of the mean size.
    work = work_ideal(time_call, calls, model_rows)
    r = dict(attack=f"APGD-{loss.upper()} eps={eps}", n=len(x), ours_s=round(ours_t, 2),
             ideal_s=round(ideal, 2), ours_over_ideal=round(ours_t / ideal, 3),
             passes=round(model_rows / len(x), 1), work_ideal_s=round(work, 2),
             ours_over_work_ideal=round(ours_t / work, 3),
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


def bench_autoattack(model, counter, time_call, x, y, eps, args, classifier, pass_s, fwd_s,
                     rows):
    ours = CountingAutoAttack(counter, eps=eps, steps=STEPS, n_target_classes=N_TARGET,
                              square_queries=SQUARE_QUERIES, jit_compile=False)
    ours.run(counter, x, y, batch_size=args.batch, seed=0)  # warm-up: tracing
    ours.parts.clear()
    times = []
    for _ in range(args.repeats):
        seconds, res = timed(lambda: ours.run(counter, x, y, batch_size=args.batch, seed=0))
        times.append(seconds)
    ours_t, runs = statistics.median(times), args.repeats
    per_point = {"APGD-CE": STEPS * pass_s, "APGDT": N_TARGET * STEPS * pass_s,
                 "FABT": N_TARGET * STEPS * pass_s, "Square": SQUARE_QUERIES * fwd_s}
    components = {}
    for label, part in ours.parts.items():
        points, calls, model_rows = (part[k] // runs for k in ("points", "calls", "rows"))
        # Square's queries are forward passes; every other component's calls forward+backward.
        work = work_ideal(time_call, calls, model_rows, forward_only=label == "Square")
        components[label] = dict(points=points, calls=calls, rows=model_rows,
                                 budget_ideal_s=round(points / len(x) * per_point[label], 3),
                                 work_ideal_s=round(work, 3), mean_s=round(part["s"] / runs, 3),
                                 mean_over_work_ideal=round(part["s"] / runs / work, 2)
                                 if work else None)
    ideal = sum(c["budget_ideal_s"] for c in components.values())
    total_work = sum(c["work_ideal_s"] for c in components.values())
    r = dict(attack=f"AutoAttack eps={eps}", n=len(x), ours_s=round(ours_t, 2),
             ideal_s=round(ideal, 2), ours_over_ideal=round(ours_t / ideal, 3),
             work_ideal_s=round(total_work, 2), ours_over_work_ideal=round(ours_t / total_work, 3),
             ours=summarize(model, x, y, res.x_adv), ours_in_ball=linf_ok(x, res.x_adv, eps),
             components=components, pass_s=round(pass_s, 4), forward_s=round(fwd_s, 4))
    if classifier is not None and eps in args.art_aa_eps:
        from art.attacks.evasion import AutoAttack as ArtAutoAttack

        art = ArtAutoAttack(classifier, norm=np.inf, eps=eps, eps_step=2 * eps,
                            batch_size=args.batch)
        art_t, x_adv = timed(lambda: art.generate(x, np.eye(10, dtype=np.float32)[y]))
        r.update(art_s=round(art_t, 2), art=summarize(model, x, y, x_adv),
                 art_in_ball=linf_ok(x, x_adv, eps), art_over_ours=round(art_t / ours_t, 2))
    rows.append(r)
    print(json.dumps(r), flush=True)


def bench_model(name, args, data, results):
    """Every requested row for one model, appended to ``results["models"]`` as they finish."""
    model, note = get_model(name, args, data[0], data[1])
    counter = RowCounter(model)
    time_call = make_call_timer(model, data[2], data[3])
    x_test, y_test = data[2], data[3]
    x, y = x_test[:args.num_examples], y_test[:args.num_examples]
    clean_acc = float(np.mean(predict(model, x) == y))
    print(f"== {name}: {note}; clean accuracy {clean_acc:.4f} on {len(x)} test images",
          flush=True)
    classifier = art_classifier(model) if available("art", not args.skip_art) else None
    entry = dict(name=name, note=note, clean_accuracy=clean_acc, rows=[])
    results["models"].append(entry)
    one_pass = make_pass(model)  # batches of bench_attacks.BATCH (500)
    forward = make_forward(model, args.batch)
    if "apgd" in args.attacks:
        pass_s, _ = median_time(lambda: one_pass(x, y), 3)
        for eps in args.eps:
            for loss in ("ce", "dlr"):
                bench_apgd(model, counter, time_call, x, y, eps, loss, args, classifier, pass_s,
                           entry["rows"])
                yield
    if "autoattack" in args.attacks:
        xa, ya = x_test[:args.aa_examples], y_test[:args.aa_examples]
        pass_s, _ = median_time(lambda: one_pass(xa, ya), 3)
        fwd_s, _ = median_time(lambda: forward(xa), 3)
        for eps in args.eps:
            bench_autoattack(model, counter, time_call, xa, ya, eps, args, classifier, pass_s, fwd_s,
                             entry["rows"])
            yield


def fmt(value, spec="{:.2f}"):
    return "—" if value is None else spec.format(value)


def print_table(results):
    """The results as Markdown tables, one per model (the layout of docs/BENCHMARKS.md)."""
    header = ("attack", "images", "ours s", "ideal s", "ours/ideal", "passes", "work ideal s",
              "ours/work ideal", "ART s", "ART/ours", "ours robust acc", "ART robust acc")
    for entry in results["models"]:
        print(f"\n{entry['name']} ({entry['note']}; clean acc {entry['clean_accuracy']:.4f} on "
              f"the first {results['command']['num_examples']} test images)\n")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in entry["rows"]:
            print("| " + " | ".join([
                r["attack"], str(r["n"]), fmt(r["ours_s"]), fmt(r["ideal_s"]),
                fmt(r["ours_over_ideal"]), fmt(r.get("passes"), "{:.1f}"),
                fmt(r.get("work_ideal_s")), fmt(r.get("ours_over_work_ideal")),
                fmt(r.get("art_s")), fmt(r.get("art_over_ours"), "{:.1f}×"),
                f"{r['ours']['adv_accuracy']:.3f}",
                fmt(r.get("art", {}).get("adv_accuracy"), "{:.3f}")]) + " |")
        for r in entry["rows"]:
            for label, c in r.get("components", {}).items():
                print(f"  {r['attack']} {label}: {c['points']} points, {c['rows']} rows, "
                      f"{c['mean_s']} s vs work ideal {c['work_ideal_s']} s "
                      f"({c['mean_over_work_ideal']}×)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=SHARED_MNIST)
    parser.add_argument("--models", default="lenet5,lenet300_100")
    parser.add_argument("--model", action="append", default=[],
                        help="name=path of a saved Keras model to attack instead of training")
    parser.add_argument("--save_models", default="", help="directory to save trained models to")
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
    args.model_paths = dict(item.split("=", 1) for item in args.model)
    data = load_mnist(args.data)
    results = dict(command=vars(args), load_before=os.getloadavg(), cpus=os.cpu_count(),
                   tf=tf.__version__, models=[])
    if available("art", not args.skip_art):
        import art

        results["art"] = art.__version__
    start = time.perf_counter()

    def save():
        results["load_after"] = os.getloadavg()
        results["wall_s"] = round(time.perf_counter() - start, 1)
        if args.output:
            os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
            with open(args.output, "w") as f:
                json.dump(results, f, indent=1, default=float)

    for name in args.models.split(","):
        for _ in bench_model(name, args, data, results):
            save()
    save()
    print_table(results)
    print(f"\nwall {results['wall_s']} s; load average before {results['load_before']}, "
          f"after {results['load_after']}")


if __name__ == "__main__":
    main()
