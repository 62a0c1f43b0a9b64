"""Wall time and result of the tfsparse attacks vs the ideal cost, a plain TF loop and IBM ART.

LeNet-5 and LeNet-300-100, trained briefly on full MNIST (or loaded with ``--model``), attacked
on the first ``--num_examples`` test images: FGS (ε 0.1, 0.3), PGD-40 (ε 0.1, 0.3, step 0.01,
one random start), DeepFool (overshoot 0.02, 50 iterations), C&W L2 (first 100 images) and
CLEVER (l2, radius 2, 10 batches × 100 samples, first 10 images). Every figure is taken in the
same process, interleaved, median of ``--repeats`` timed runs after one warm-up (tracing) run:

  * ideal: k × one batched forward+backward pass over the same images (batches of 500);
  * plain: a plain in-graph TF loop (``tf.function``, ``tf.range`` over the k steps, no XLA),
    called per batch of 500 like ours; FGS/PGD only;
  * ART: ``TensorFlowV2Classifier`` wrapping the same Keras model (skipped with ``--skip_art``
    or when ``art`` is not importable). ART's heavy attacks (DeepFool, C&W, CLEVER) run once
    (no repeats) on a subset: DeepFool on ``--art_deepfool_examples`` (100; ours is re-timed on
    the same images for the speed-up), C&W on ``--art_cw_examples`` (20) and CLEVER on
    ``--art_clever_examples`` (1) images, their times scaled linearly to 100 / 10 images (ART's
    C&W uses batch_size=1 and clever_u one image per call, so they are linear in the images).
    Our C&W budget is ``CW_OURS``; ``--cw_reference`` adds our C&W at Foolbox's default budget.
  * Foolbox 3: ``TensorFlowModel`` wrapping the same Keras model (skipped with ``--skip_foolbox``
    or when ``foolbox`` is not importable), batches of 500: ``FGSM``/``LinfPGD`` (median of the
    repeats), ``L2DeepFoolAttack`` (steps 50, candidates 10, overshoot 0.02, logits loss; once, on
    all images) and ``L2CarliniWagnerAttack`` with its defaults (9 × 10,000 steps; once, on the
    first ``--foolbox_cw_examples`` images, compared with ours on the same images).

ART's ``clever_u`` fails as shipped on TF2 classifiers (it passes a NumPy integer label to
``class_gradient``, which only takes the single-label path for a Python ``int``); the benchmark
wraps ``class_gradient`` to cast the label, see :func:`art_clever_classifier`.

Command (2 CPU cores under load ~6: ~35 min for LeNet-5, ~3 min for LeNet-300-100)::

    python benchmarks/bench_attacks.py --data=../shared/data/mnist.npz \
        --models=lenet5,lenet300_100 --num_examples=1000 --repeats=3 \
        --save_models=/tmp/bench_models --output=benchmarks/results.json

Re-run one part on saved models, e.g.
``--models=lenet5 --model=lenet5=/tmp/bench_models/lenet5.h5 --attacks=clever``.
"""

import argparse
import json
import os
import statistics
import time

import numpy as np
from _peers import available

import tfsparse  # noqa: F401  (before anything TF: selects tf_keras)
from tfsparse import attacks
from tfsparse import models
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.metrics import clever
from tfsparse.model_io import load_keras_model
from tfsparse.training.clean import train

BATCH = 500
CW_EXAMPLES = 100
CLEVER_EXAMPLES = 10
CLEVER_RADIUS = 2.0
# Our C&W budget (chosen here; see docs/BENCHMARKS.md) and the Foolbox-default budget it is
# compared with (Foolbox 3 defaults: 9 binary steps × 10,000 Adam steps, lr 0.01, c₀ 1e-3).
CW_OURS = dict(binary_search_steps=5, steps=200, learning_rate=0.05, initial_const=1e-2)
CW_REFERENCE = dict(binary_search_steps=9, steps=10000, learning_rate=0.01, initial_const=1e-3)

# The shared MNIST beside the repository (../shared/data/, as the README lays it out).
SHARED_MNIST = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                                             "data", "mnist.npz"))


def load_mnist(path):
    data = np.load(path)
    prep = lambda a: (a.astype(np.float32) / 255.0)[..., None]  # noqa: E731
    return prep(data["x_train"]), data["y_train"].astype(np.int32), prep(
        data["x_test"]), data["y_test"].astype(np.int32)


def get_model(name, args, x_train, y_train):
    if name in args.model_paths:
        return load_keras_model(args.model_paths[name]), "loaded " + args.model_paths[name]
    import ml_collections

    keras.utils.set_random_seed(0)
    model = models.get(name)(10, (28, 28, 1), 0.1307, 0.3081)
    cfg = ml_collections.ConfigDict(dict(
        optimizer="sgd", batch_size=64, learning_rate=0.01, momentum=0.9, weight_decay=5e-4,
        lr_schedule="constant", steps=0, epochs=float(args.epochs), augment=False,
        jit_compile=False))
    start = time.perf_counter()
    train(model, x_train, y_train, cfg)
    note = f"trained {args.epochs} epochs in {time.perf_counter() - start:.0f} s"
    if args.save_models:
        os.makedirs(args.save_models, exist_ok=True)
        path = os.path.join(args.save_models, f"{name}.h5")
        model.save(path)
        note += f", saved to {path}"
    return model, note


def predict(model, x):
    return np.concatenate([
        np.argmax(model(x[s:s + BATCH], training=False).numpy(), axis=1)
        for s in range(0, len(x), BATCH)])


def summarize(model, x, y, x_adv):
    """The AttackResult figures, computed the same way for ours, the plain loop and ART."""
    clean = predict(model, x) == y
    adv = predict(model, x_adv) == y
    success = clean & ~adv
    l2 = np.sqrt(np.sum(np.square(x_adv - x).reshape(len(x), -1), axis=1))
    return dict(adv_accuracy=float(adv.mean()),
                success_rate=float(success.sum() / max(clean.sum(), 1)),
                mean_l2=float(l2[success].mean()) if success.any() else float("nan"))


def ours_summary(result):
    return dict(adv_accuracy=result.adv_accuracy, success_rate=result.success_rate,
                mean_l2=float(result.l2[result.success].mean()) if result.success.any()
                else float("nan"))


def first_images(result, m):
    """Success rate and mean l2 of our ``AttackResult`` on its first ``m`` images."""
    success = result.success[:m]
    return dict(success_rate=float(success.sum() / max(result.clean_correct[:m].sum(), 1)),
                mean_l2=float(result.l2[:m][success].mean()))


def peer_on_subset(generate, model, x, y):
    """Runs a peer's ``generate(x, y) -> x_adv`` once: its seconds and summarized result."""
    seconds, x_adv = timed(lambda: generate(x, y))
    return seconds, summarize(model, x, y, x_adv)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def interleaved(fns, repeats):
    """One warm-up call each, then ``repeats`` rounds calling every fn in turn; medians."""
    outputs = {name: fn() for name, fn in fns.items()}
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            seconds, outputs[name] = timed(fn)
            times[name].append(seconds)
    return {name: statistics.median(t) for name, t in times.items()}, outputs, times


def make_pass(model):
    """One batched forward+backward (input gradient of the summed loss), no XLA."""

    @tf.function(jit_compile=False, input_signature=[
        tf.TensorSpec((None, 28, 28, 1), tf.float32), tf.TensorSpec((None,), tf.int32)])
    def grad(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                y, model(x, training=False)))
        return tape.gradient(loss, x)

    def run(x, y):
        for s in range(0, len(x), BATCH):
            grad(tf.constant(x[s:s + BATCH]), tf.constant(y[s:s + BATCH])).numpy()

    return run


def make_plain_pgd(model, random_start):
    """The plain in-graph l∞ PGD loop: ``tf.range`` over k steps in one tf.function, no XLA."""

    @tf.function(jit_compile=False, input_signature=[
        tf.TensorSpec((None, 28, 28, 1), tf.float32), tf.TensorSpec((None,), tf.int32),
        tf.TensorSpec((), tf.float32), tf.TensorSpec((), tf.float32),
        tf.TensorSpec((), tf.int32), tf.TensorSpec((2,), tf.int64)])
    def pgd(x, y, eps, step, k, seed):
        x_adv = x
        if random_start:
            x_adv = tf.clip_by_value(
                x + tf.random.stateless_uniform(tf.shape(x), seed, -eps, eps), 0.0, 1.0)
        for _ in tf.range(k):
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                    y, model(x_adv, training=False)))
            g = tape.gradient(loss, x_adv)
            x_adv = tf.clip_by_value(
                tf.clip_by_value(x_adv + step * tf.sign(g), x - eps, x + eps), 0.0, 1.0)
        clean = tf.argmax(model(x, training=False), axis=1, output_type=tf.int32)
        adv = tf.argmax(model(x_adv, training=False), axis=1, output_type=tf.int32)
        return x_adv, tf.equal(clean, y), tf.equal(adv, y)

    def run(x, y, eps, step, k):
        outs = [pgd(tf.constant(x[s:s + BATCH]), tf.constant(y[s:s + BATCH]), eps, step, k,
                    tf.constant([0, i], tf.int64))
                for i, s in enumerate(range(0, len(x), BATCH))]
        return np.concatenate([o[0].numpy() for o in outs])

    return run


def art_classifier(model):
    from art.estimators.classification import TensorFlowV2Classifier

    return TensorFlowV2Classifier(
        model=model, nb_classes=10, input_shape=(28, 28, 1), clip_values=(0.0, 1.0),
        loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def foolbox_attack(kind, **params):
    """A function ``(model, x, y, eps) -> x_adv`` running a Foolbox 3 attack in batches of 500."""
    import foolbox

    attack = getattr(foolbox.attacks, kind)(**params)

    def run(model, x, y, eps=None):
        fmodel = foolbox.TensorFlowModel(model, bounds=(0.0, 1.0))
        outs = []
        for s in range(0, len(x), BATCH):
            _, clipped, _ = attack(fmodel, tf.constant(x[s:s + BATCH]),
                                   tf.constant(y[s:s + BATCH].astype(np.int64)), epsilons=eps)
            outs.append(clipped.numpy())
        return np.concatenate(outs)

    return run


def art_clever_classifier(model):
    """An ART classifier whose ``class_gradient`` accepts NumPy integer labels.

    ``art.metrics.clever_t`` passes ``pred_class = np.argmax(...)[0]`` (``np.int64``);
    ``TensorFlowV2Classifier.class_gradient`` tests ``isinstance(label, int)``, so a NumPy
    integer falls into the per-sample-label branch, which iterates over the 0-d label and raises
    ``TypeError: iteration over a 0-d array``. Casting the label to ``int`` is the fix.
    """
    classifier = art_classifier(model)
    original = classifier.class_gradient

    def class_gradient(x, label=None, **kwargs):
        if isinstance(label, np.integer):
            label = int(label)
        return original(x, label=label, **kwargs)

    classifier.class_gradient = class_gradient
    return classifier


def art_clever_as_shipped(model, x):
    """Tries ART's ``clever_u`` unpatched; returns the error message (or None if it works)."""
    from art.metrics import clever_u

    try:
        clever_u(art_classifier(model), x[0], 2, 2, CLEVER_RADIUS, 2, pool_factor=2,
                 verbose=False)
        return None
    except Exception as error:  # noqa: BLE001  (reporting whatever ART raises)
        return f"{type(error).__name__}: {error}"


def bench_model(name, args, data):
    x_train, y_train, x_test, y_test = data
    model, note = get_model(name, args, x_train, y_train)
    n = args.num_examples
    x, y = x_test[:n], y_test[:n]
    clean_acc = float(np.mean(predict(model, x) == y))
    print(f"\n== {name}: {note}; clean accuracy {clean_acc:.4f} on {n} test images", flush=True)
    use_art = available("art", not args.skip_art)
    use_foolbox = available("foolbox", not args.skip_foolbox)
    rows = []
    one_pass = make_pass(model)
    plain_rs = make_plain_pgd(model, random_start=True)
    plain_fgs = make_plain_pgd(model, random_start=False)
    classifier = art_classifier(model) if use_art else None

    def row(attack, ours_t, ours_res, ideal=None, plain=None, plain_res=None, art_t=None,
            art_res=None, fb_t=None, fb_res=None, extra=None):
        r = dict(model=name, attack=attack, ours_s=round(ours_t, 3), ours=ours_res)
        if ideal is not None:
            r.update(ideal_s=round(ideal, 3), ours_over_ideal=round(ours_t / ideal, 3))
        if plain is not None:
            r.update(plain_s=round(plain, 3), ours_over_plain=round(ours_t / plain, 3),
                     plain=plain_res)
        if art_t is not None:
            r.update(art_s=round(art_t, 3), art=art_res, art_over_ours=round(art_t / ours_t, 2))
        if fb_t is not None:
            r.update(foolbox_s=round(fb_t, 3), foolbox=fb_res,
                     foolbox_over_ours=round(fb_t / ours_t, 2))
        r.update(extra or {})
        if "art_over_ours_same_images" in r:  # DeepFool: ART ran on a subset, compare there
            r["art_over_ours"] = r["art_over_ours_same_images"]
        rows.append(r)
        print(json.dumps(r), flush=True)

    # --- FGS and PGD-40: ours, ideal (k passes), plain loop, ART, interleaved. -------------
    for eps in (0.1, 0.3):
        for kind, steps in (("FGS", 1), ("PGD-40", 40)):
            if kind.split("-")[0].lower() not in args.attacks:
                continue
            if kind == "FGS":
                ours = attacks.FGSM(eps=eps)
                plain = lambda: plain_fgs(x, y, eps, eps, 1)  # noqa: E731
            else:
                ours = attacks.PGD(eps=eps, step_size=0.01, steps=40)
                plain = lambda: plain_rs(x, y, eps, 0.01, 40)  # noqa: E731
            fns = {"ours": lambda: ours.run(model, x, y, batch_size=BATCH, seed=0),
                   "pass": lambda: one_pass(x, y),
                   "plain": plain}
            if use_art:
                from art.attacks.evasion import FastGradientMethod
                from art.attacks.evasion import ProjectedGradientDescent

                if kind == "FGS":
                    art_attack = FastGradientMethod(classifier, norm=np.inf, eps=eps,
                                                    batch_size=BATCH)
                else:
                    art_attack = ProjectedGradientDescent(
                        classifier, norm=np.inf, eps=eps, eps_step=0.01, max_iter=40,
                        num_random_init=1, batch_size=BATCH, verbose=False)
                fns["art"] = lambda: art_attack.generate(x, y)
            if use_foolbox:
                fb_run = (foolbox_attack("FGSM") if kind == "FGS" else
                          foolbox_attack("LinfPGD", abs_stepsize=0.01, steps=40, random_start=True))
                fns["foolbox"] = lambda: fb_run(model, x, y, eps)
            med, out, _ = interleaved(fns, args.repeats)
            row(f"{kind} eps={eps}", med["ours"], ours_summary(out["ours"]),
                ideal=steps * med["pass"], plain=med["plain"],
                plain_res=summarize(model, x, y, out["plain"]),
                art_t=med.get("art"), art_res=summarize(model, x, y, out["art"]) if use_art
                else None, fb_t=med.get("foolbox"),
                fb_res=summarize(model, x, y, out["foolbox"]) if use_foolbox else None,
                extra=dict(pass_s=round(med["pass"], 4)))

    # --- DeepFool. ----------------------------------------------------------------------------
    deepfool = attacks.DeepFool(overshoot=0.02, max_iter=50)
    if "deepfool" in args.attacks:
        bench_deepfool(model, x, y, n, args, deepfool, one_pass, classifier, use_art, use_foolbox,
                       row)
    if "cw" in args.attacks:
        bench_cw(model, x, y, args, one_pass, classifier, use_art,
                 use_foolbox and name in args.foolbox_cw_models, row)
    if "clever" in args.attacks:
        bench_clever(model, x, y, n, args, one_pass, use_art, row)
    return dict(model=name, note=note, clean_accuracy=clean_acc, rows=rows)


def bench_deepfool(model, x, y, n, args, deepfool, one_pass, classifier, use_art, use_foolbox,
                   row):
    med, out, _ = interleaved({"ours": lambda: deepfool.run(model, x, y, batch_size=BATCH),
                               "pass": lambda: one_pass(x, y)}, args.repeats)
    res = out["ours"]
    extra = dict(pass_s=round(med["pass"], 4),
                 ours_in_passes=round(med["ours"] / med["pass"], 1))
    art_t = art_res = None
    if use_art:
        from art.attacks.evasion import DeepFool as ArtDeepFool

        # ART's DeepFool is dominated by per-iteration overhead, so its time does not scale
        # linearly with the images: ART runs once on the first m images and ours is timed on
        # the same m images (median of the repeats) for the speed-up.
        m = min(args.art_deepfool_examples, n)
        art_df = ArtDeepFool(classifier, max_iter=50, epsilon=0.02, nb_grads=10,
                             batch_size=BATCH, verbose=False)
        sub_med, sub_out, _ = interleaved(
            {"ours": lambda: deepfool.run(model, x[:m], y[:m], batch_size=BATCH)}, args.repeats)
        art_t, x_adv = timed(lambda: art_df.generate(x[:m], y[:m]))
        art_res = summarize(model, x[:m], y[:m], x_adv)
        extra.update(art_examples=m, ours_s_on_art_subset=round(sub_med["ours"], 3),
                     ours_on_art_subset=ours_summary(sub_out["ours"]),
                     art_over_ours_same_images=round(art_t / sub_med["ours"], 1))
    fb_t = fb_res = None
    if use_foolbox:
        fb_df = foolbox_attack("L2DeepFoolAttack", steps=50, candidates=10, overshoot=0.02,
                               loss="logits")
        fb_t, x_adv = timed(lambda: fb_df(model, x, y))
        fb_res = summarize(model, x, y, x_adv)
    row("DeepFool", med["ours"], ours_summary(res), art_t=art_t, art_res=art_res, fb_t=fb_t,
        fb_res=fb_res, extra=extra)


def bench_cw(model, x, y, args, one_pass, classifier, use_art, use_foolbox, row):

    # --- C&W L2 on the first 100 images: our budget, Foolbox-default budget (once), ART. ---------
    xc, yc = x[:CW_EXAMPLES], y[:CW_EXAMPLES]
    cw = attacks.CarliniWagnerL2(**CW_OURS)
    med, out, _ = interleaved({"ours": lambda: cw.run(model, xc, yc, batch_size=CW_EXAMPLES),
                               "pass": lambda: one_pass(xc, yc)}, args.cw_repeats)
    extra = dict(budget=CW_OURS, pass_s=round(med["pass"], 4),
                 ours_in_passes=round(med["ours"] / med["pass"], 1))
    if args.cw_reference:
        ref = attacks.CarliniWagnerL2(**CW_REFERENCE)
        ref_t, ref_res = timed(lambda: ref.run(model, xc, yc, batch_size=CW_EXAMPLES))
        extra.update(reference_budget=CW_REFERENCE, reference_s=round(ref_t, 2),
                     reference=ours_summary(ref_res))
    art_t = art_res = None
    if use_art:
        from art.attacks.evasion import CarliniL2Method

        # ART's defaults (batch_size=1: images are attacked one after the other, so its time
        # is linear in the images): run on the first m images, time scaled to 100.
        m = min(args.art_cw_examples, CW_EXAMPLES)
        art_t, art_res = peer_on_subset(CarliniL2Method(classifier, verbose=False).generate,
                                        model, xc[:m], yc[:m])
        extra.update(art_examples=m, art_s_measured=round(art_t, 2),
                     ours_on_art_subset=first_images(out["ours"], m))
        art_t = art_t * CW_EXAMPLES / m
    fb_t = fb_res = None
    if use_foolbox:
        # Foolbox's defaults (9 binary-search steps × 10,000 Adam steps, lr 0.01, c₀ 1e-3,
        # early abort), batched, once on the first m images; time scaled to 100 images. Its
        # cost is per-step overhead more than arithmetic: 2 images take minutes, like 100.
        m = min(args.foolbox_cw_examples, CW_EXAMPLES)
        fb_cw = foolbox_attack("L2CarliniWagnerAttack")
        fb_t, fb_res = peer_on_subset(lambda a, b: fb_cw(model, a, b), model, xc[:m], yc[:m])
        extra.update(foolbox_examples=m, foolbox_s_measured=round(fb_t, 2),
                     ours_on_foolbox_subset=first_images(out["ours"], m))
        fb_t = fb_t * CW_EXAMPLES / m
    row("C&W L2 (100 images)", med["ours"], ours_summary(out["ours"]), art_t=art_t,
        art_res=art_res, fb_t=fb_t, fb_res=fb_res, extra=extra)


def bench_clever(model, x, y, n, args, one_pass, use_art, row):
    # --- CLEVER (l2, radius 2, 10 batches × 100 samples) on 10 images. ---------------------------
    xv = x[:CLEVER_EXAMPLES]
    med, out, _ = interleaved(
        {"ours": lambda: clever(model, xv, norm="l2", radius=CLEVER_RADIUS,
                                              batches=10, samples=100),
         "pass": lambda: one_pass(x[:1000], y[:1000])}, args.repeats)
    # Ideal: per image, 9 class-margin gradients over 1,000 points = 9 passes over 1,000 images.
    ideal = CLEVER_EXAMPLES * 9 * med["pass"] * 1000 / min(n, 1000)
    extra = dict(ours_scores=[round(float(s), 4) for s in out["ours"]["scores"]])
    art_t = art_res = None
    if use_art:
        from art.metrics import clever_u

        extra["art_as_shipped"] = art_clever_as_shipped(model, xv)
        m = min(args.art_clever_examples, CLEVER_EXAMPLES)
        patched = art_clever_classifier(model)
        art_t, scores = timed(lambda: [
            float(clever_u(patched, xv[i], 10, 100, CLEVER_RADIUS, 2, pool_factor=10,
                           verbose=False)) for i in range(m)])
        art_t_measured = art_t
        art_t = art_t * CLEVER_EXAMPLES / m
        art_res = dict(mean_score=float(np.mean(scores)), scores=[round(s, 4) for s in scores])
        extra.update(art_examples=m, art_s_measured=round(art_t_measured, 2),
                     ours_mean_on_art_subset=float(np.mean(out["ours"]["scores"][:m])))
    row("CLEVER l2 (10 images)", med["ours"], dict(mean_score=out["ours"]["mean"]), ideal=ideal,
        art_t=art_t, art_res=art_res, extra=extra)


def fmt(value, spec="{:.2f}"):
    return "—" if value is None else spec.format(value)


def print_table(results):
    """The results as one Markdown table per model (the layout of docs/BENCHMARKS.md)."""
    header = ("attack", "ours s", "ideal s", "ours/ideal", "plain s", "ours/plain", "ART s",
              "ART/ours", "Foolbox s", "Foolbox/ours", "ours result", "ART result",
              "Foolbox result")
    for model in results["models"]:
        print(f"\n{model['model']} ({model['note']}; clean acc {model['clean_accuracy']:.4f})\n")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in model["rows"]:
            def res(d):
                if not d:
                    return "—"
                if "mean_score" in d:
                    return f"score {d['mean_score']:.3f}"
                s = f"acc {d['adv_accuracy']:.3f}"
                if "DeepFool" in r["attack"] or "C&W" in r["attack"]:
                    s += f" l2 {d['mean_l2']:.3f} succ {d['success_rate']:.3f}"
                return s
            print("| " + " | ".join([r["attack"], fmt(r["ours_s"]), fmt(r.get("ideal_s")),
                              fmt(r.get("ours_over_ideal")), fmt(r.get("plain_s")),
                              fmt(r.get("ours_over_plain")), fmt(r.get("art_s")),
                              fmt(r.get("art_over_ours"), "{:.1f}×"), fmt(r.get("foolbox_s")),
                              fmt(r.get("foolbox_over_ours"), "{:.1f}×"), res(r["ours"]),
                              res(r.get("art")), res(r.get("foolbox"))]) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=SHARED_MNIST)
    parser.add_argument("--models", default="lenet5,lenet300_100")
    parser.add_argument("--model", action="append", default=[],
                        help="name=path of a saved Keras model to attack instead of training")
    parser.add_argument("--save_models", default="", help="directory to save trained models to")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--num_examples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip_art", action="store_true")
    parser.add_argument("--skip_foolbox", action="store_true")
    parser.add_argument("--foolbox_cw_examples", type=int, default=100)
    parser.add_argument("--foolbox_cw_models", default="lenet5,lenet300_100",
                        help="models on which Foolbox's C&W runs (minutes to a quarter hour each)")
    parser.add_argument("--cw_reference", action="store_true",
                        help="also run our C&W once at the Foolbox-default budget (9 × 10,000 steps)")
    parser.add_argument("--cw_repeats", type=int, default=1)
    parser.add_argument("--art_deepfool_examples", type=int, default=100)
    parser.add_argument("--art_cw_examples", type=int, default=20)
    parser.add_argument("--art_clever_examples", type=int, default=1)
    parser.add_argument("--attacks", default="fgs,pgd,deepfool,cw,clever")
    parser.add_argument("--output", default="benchmarks/results.json")
    parser.add_argument("--table", default="", help="only print the tables of this results file")
    args = parser.parse_args()
    args.attacks = args.attacks.split(",")
    args.foolbox_cw_models = args.foolbox_cw_models.split(",")
    if args.table:
        with open(args.table) as f:
            print_table(json.load(f))
        return
    args.model_paths = dict(item.split("=", 1) for item in args.model)
    data = load_mnist(args.data)
    results = dict(command=vars(args) | {"model_paths": args.model_paths},
                   load_before=os.getloadavg(), cpus=os.cpu_count(), tf=tf.__version__,
                   models=[])
    start = time.perf_counter()
    for name in args.models.split(","):
        results["models"].append(bench_model(name, args, data))
        results["load_after"] = os.getloadavg()
        results["wall_s"] = round(time.perf_counter() - start, 1)
        if args.output:
            os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
            with open(args.output, "w") as f:
                json.dump(results, f, indent=1, default=float)
    print_table(results)
    print(f"\nwall {results['wall_s']} s; load average before {results['load_before']}, "
          f"after {results['load_after']}")


if __name__ == "__main__":
    main()
