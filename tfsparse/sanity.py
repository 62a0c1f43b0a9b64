"""Sanity checks that act before an evaluation, so that a number it prints can be trusted.

AutoAttack's ``checks.py`` and RobustBench's admission rules warn about the usual ways a
robustness number is inflated (Athalye, Carlini, Wagner, ICML 2018 §3.1; Croce & Hein 2020
§5); here the worst of them change what is run instead of only being printed:

* **Non-finite outputs.** NaN or Inf in the outputs (a NaN weight, an overflow) is refused
  first (:class:`~tfsparse.errors.NonFiniteOutputError`): every later conclusion would be
  drawn from it (NaN != NaN makes two passes "differ", argmax of NaN is class 0).
* **Probability outputs.** Attacks and Guo's r2 need logits: on softmax outputs the
  cross-entropy gradient vanishes where the model is confident and DeepFool's linearisation
  measures distances in probability space (measured: r2 5.60 for a CNN whose logits give
  1.45). A model whose rows are non-negative and sum to 1 is refused
  (:class:`~tfsparse.errors.ConfigError`) unless the caller states ``model_outputs=
  "probabilities"``; then it is attacked through ``log p`` (logits up to a per-row constant,
  which leaves the argmax, the cross-entropy and the DeepFool/C&W margins unchanged).
* **Randomness at inference.** Two forward passes of the same inputs differ (or a layer
  says it injects noise): every gradient attack is replaced by its EOT form (gradients
  averaged over ``eot_samples`` draws; Athalye et al. §4.2), and an attack without one is
  refused, naming it.
* **Gradients.** Zero or non-finite input gradients on most clean points (masked or
  saturated gradients) are flagged.
* **Unbounded budget.** PGD at ε = 1 (l∞ on [0, 1] images: any image is reachable) must
  leave accuracy 0; otherwise the gradients do not lead to the model's decisions.

What the user asked for is checked as well, so that no value is changed or accepted without
a word: an l∞ budget above 1 (:func:`check_linf_eps`: ``--eps=5`` meant 5/255), outputs that
do not match the classes (:func:`check_outputs_for_classes`), and, as a note, a PGD step
larger than its ε (:func:`budget_notes`).

Every flag is a dict ``{"flag", "detail"}``; the flags, with what raises them, what they mean
and what to do, are documented in docs/EVALUATION_FLAGS.md.
"""

import numpy as np

from tfsparse import attacks as attack_lib
from tfsparse.attacks.base import loss_per_sample
from tfsparse.compat import tf
from tfsparse.errors import ConfigError
from tfsparse.errors import NonFiniteGradientError
from tfsparse.errors import NonFiniteOutputError
from tfsparse.layers import has_inference_noise

MODEL_OUTPUTS = ("logits", "probabilities")
PROBE = 64  # inputs used by the output and randomness probes


def flag(name, detail):
    """One evaluation flag, as it lands in the JSON report."""
    return {"flag": name, "detail": detail}


def check_finite_outputs(outputs):
    """Raises NonFiniteOutputError if ``outputs`` (a model's outputs on some inputs) hold NaN or Inf."""
    outputs = np.asarray(outputs)
    rows = outputs.reshape(len(outputs), -1) if outputs.ndim else outputs.reshape(1, 1)
    bad = ~np.all(np.isfinite(rows), axis=1)
    if bad.any():
        kinds = " and ".join(k for k, m in (("NaN", np.isnan(rows)), ("Inf", np.isinf(rows))) if m.any())
        raise NonFiniteOutputError(
            f"the model outputs {kinds} on {int(bad.sum())} of {len(rows)} inputs, so no accuracy or robustness "
            "can be measured; look for a NaN/Inf weight or an overflow in the model (retrain or re-export it)")


def check_inputs(x):
    """Raises ConfigError unless every input lies in [0, 1], the range every attack's ε and box assume."""
    x = np.asarray(x)
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise ConfigError(f"inputs must lie in [0, 1], got [{x.min():g}, {x.max():g}]; scale 0-255 images by 1/255")


PROBABILITIES = ("the model outputs probabilities (rows are non-negative and sum to 1), which inflates r2 and "
                 "weakens gradient attacks; give a model that outputs logits, or pass --model_outputs=probabilities "
                 "(evaluate_dataset(model_outputs='probabilities')) to attack log-probabilities")


def check_evaluable(x, y, outputs):
    """What :func:`tfsparse.evaluation.evaluate` refuses before any number is drawn: inputs outside [0, 1],
    NaN / Inf outputs, probability outputs, and fewer outputs than the labels need (ConfigError each)."""
    check_inputs(x)
    check_finite_outputs(outputs)
    outputs = np.asarray(outputs)
    if looks_like_probabilities(outputs):
        raise ConfigError(PROBABILITIES)
    columns = outputs.shape[1] if outputs.ndim == 2 else 1
    if len(y) and int(np.max(y)) >= max(columns, 2):
        raise ConfigError(f"the model has {columns} output(s) but the labels go up to {int(np.max(y))}; "
                          "give a model with one logit per class")


def check_linf_eps(eps, what="eps"):
    """Raises ConfigError unless the l∞ budget ``eps`` (a number or per-sample values) lies in [0, 1].

    Images are in [0, 1] (SPEC §1), so ε = 1 already reaches every image: a larger value is
    always a unit mistake (``--eps=8`` meant 8/255), never a stronger attack. The one check of
    every l∞ budget a user gives: evaluate's ``--eps`` (through :func:`check_budgets`), the
    training ``pgd.eps``, the sweep's ``eval.fgs_eps``, export's ``robustness.eps``.
    """
    values = np.asarray(eps, dtype=np.float64).reshape(-1)
    shown = f"{float(values.max()) if values.size else eps:g}"
    if not (values.size and np.all(values >= 0)):  # NaN fails too
        raise ConfigError(f"{what} must be >= 0 (pixel units of [0, 1] images), got {eps}")
    if values.max() > 1:
        big = float(values.max())
        raise ConfigError(f"{what} is an l∞ budget in pixel units of [0, 1] images, so at most 1 (ε = 1 already "
                          f"reaches every image), got {shown}; did you mean {shown}/255 = {big / 255:.4f}?")


def check_budgets(attacks, what="--eps"):
    """Raises ConfigError if an attack's l∞ ε-ball (``attack.eps_ball``) exceeds 1 (:func:`check_linf_eps`).

    l2 budgets are not bounded by 1 (the l2 diameter of [0, 1]^d is √d) and are left alone.
    """
    for attack in attacks:
        ball = getattr(attack, "eps_ball", None)
        if ball is not None and ball[0] == "linf":
            check_linf_eps(ball[1], f"{what} ({attack.name})")


def step_note(eps, step_size, what="pgd"):
    """A one-line note when a PGD step exceeds its ε, else None.

    Legal, so not refused: every step is projected back onto the ε-ball, and any attack's
    accuracy is a valid upper bound on robust accuracy. But it is usually a slip (a step in
    0-255 units, or ε lowered without the step): l∞ sign steps longer than 2ε only hop between
    corners of the ball, which weakens PGD. Madry et al. 2018 use 0.01 for ε = 0.3 (MNIST) and
    2/255 for 8/255 (CIFAR). (cleverhans asserts ``eps_iter <= eps`` instead; refusing would
    also refuse ε = 0 with any step, the identity that tests and ε sweeps rely on.)
    """
    eps, step = float(np.max(eps)), float(np.max(step_size))
    if 0 < eps < step:
        return (f"note: {what} step size {step:g} is larger than its eps {eps:g}: every step is projected back "
                "onto the eps-ball, so PGD hops between its corners; usually a mistake (Madry et al. use a "
                "step of about eps/30 to eps/4)")
    return None


def budget_notes(attacks):
    """The :func:`step_note` of every attack with a ``step_size`` (PGD, EOT-PGD), as flags."""
    notes = []
    for attack in attacks:
        params = getattr(attack, "params", {})
        if "step_size" in params and "eps" in params:
            note = step_note(params["eps"], params["step_size"], attack.name)
            if note:
                notes.append(flag("step_exceeds_eps", note))
    return notes


def check_outputs_for_classes(num_outputs, num_classes, what="the model",
                              hint="give a model with one logit per class, trained on this dataset and classes"):
    """Raises ConfigError unless ``num_outputs`` logits fit ``num_classes`` classes.

    One logit per class, or one logit for two classes (a binary model, ``logit > 0`` is class
    1: Guo et al.'s linear binary classifier, zoo model ``linear_binary``). Fewer outputs make
    every label above the last one unreachable (a 1-logit model on 10 classes scores near 0);
    more make the argmax range over classes the data does not have (a CIFAR-100 model on
    CIFAR-10, or a 10-class model on a ``classes`` subset, whose labels are renumbered 0..k-1),
    so its accuracy is not that of any classifier of this data. Both are refused.
    """
    if num_outputs == num_classes or (num_outputs == 1 and num_classes == 2):
        return
    raise ConfigError(f"{what} has {num_outputs} output(s) but the data has {num_classes} classes; {hint}")


def looks_like_probabilities(outputs, atol=1e-4):
    """True if every row is non-negative and sums to 1 (softmax outputs), for ≥ 2 columns."""
    outputs = np.asarray(outputs, np.float64)
    if outputs.ndim != 2 or outputs.shape[1] < 2:
        return False
    return bool(np.all(outputs >= 0) and np.allclose(outputs.sum(axis=1), 1.0, atol=atol))


class LogProbabilities:
    """A probability-output model seen as one with logits ``log p`` (clipped at 1e-12)."""

    def __init__(self, model):
        self.model = model
        self.input_shape = getattr(model, "input_shape", None)
        self.layers = getattr(model, "layers", [])
        self.name = f"log({getattr(model, 'name', 'model')})"

    def __call__(self, x, training=False):
        return tf.math.log(tf.clip_by_value(tf.cast(self.model(x, training=training), tf.float32), 1e-12, 1.0))


def is_random_at_inference(model, x):
    """True if a layer declares inference noise (:func:`tfsparse.layers.has_inference_noise`) or two passes
    over ``x`` differ: the one randomness detector the evaluation acts on."""
    if has_inference_noise(model):
        return True
    first = np.asarray(model(x, training=False))
    second = np.asarray(model(x, training=False))
    return not np.array_equal(first, second, equal_nan=True)  # NaN != NaN is not randomness


def eot_version(attack, samples):
    """The EOT form of a gradient attack, the attack itself if it needs none, or None.

    FGS becomes one EOT step of size ε from x; PGD becomes EOT-PGD; an attack with an
    ``eot_samples`` parameter gets ``samples``; AutoAttack becomes its ``rand`` version. Black-box attacks (ZOO, transfer, Square)
    query the random model as it is. DeepFool, C&W and rFGS have no EOT form here (None).
    """
    if isinstance(attack, attack_lib.AutoAttack):
        p = attack.params
        return attack_lib.AutoAttack(eps=p["eps"], norm=p["norm"], version="rand", steps=p["steps"],
                                     eot_samples=samples, jit_compile=p["jit_compile"])
    if isinstance(attack, attack_lib.EOTPGD) or attack.params.get("eot_samples", 1) > 1:
        return attack
    if isinstance(attack, attack_lib.PGD):
        p = attack.params
        return attack_lib.EOTPGD(eps=p["eps"], step_size=p["step_size"], steps=p["steps"], samples=samples,
                                 norm=p["norm"], random_start=p["random_start"], restarts=p["restarts"],
                                 targeted=p["targeted"], jit_compile=p["jit_compile"])
    if type(attack) is attack_lib.FGSM:
        return attack_lib.EOTPGD(eps=attack.eps, step_size=attack.eps, steps=1, samples=samples, random_start=False,
                                 jit_compile=attack.params["jit_compile"])
    if "eot_samples" in attack.params:
        params = {k: v for k, v in attack.params.items() if k != "name"}
        return type(attack)(**{**params, "eot_samples": samples})
    if isinstance(attack, attack_lib.BLACK_BOX):
        return attack
    return None


def prepare(model, x, attacks, *, model_outputs="logits", eot_samples=20):
    """Applies the acting checks before an evaluation.

    Args:
      model: the model, called as ``model(x, training=False)``.
      x: the evaluation inputs (the first :data:`PROBE` are probed).
      attacks: the requested attacks.
      model_outputs: ``"logits"`` (default; probabilities are refused) or ``"probabilities"``.
      eot_samples: draws per gradient of the EOT forms used on a random model (AutoAttack's
        ``rand`` version uses 20).

    Returns:
      ``(model, attacks, flags, stochastic)`` — the model to attack (wrapped for
      probabilities), the attacks to run, the flags raised, and whether the model is random.

    Raises:
      NonFiniteOutputError: NaN or Inf outputs on the probe (checked before anything else).
      ConfigError: probabilities without ``model_outputs="probabilities"``, logits declared as
        probabilities, or an attack without an EOT form on a random model.
    """
    if model_outputs not in MODEL_OUTPUTS:
        raise ConfigError(f"model_outputs must be one of {MODEL_OUTPUTS}, got {model_outputs!r}")
    probe = x[:PROBE]
    flags = []
    outputs = model(probe, training=False)
    check_finite_outputs(outputs)
    probabilities = looks_like_probabilities(outputs)
    if probabilities and model_outputs == "logits":
        raise ConfigError(PROBABILITIES)
    if model_outputs == "probabilities":
        if not probabilities:
            raise ConfigError("--model_outputs=probabilities, but the outputs are not probabilities "
                              "(rows must be non-negative and sum to 1); drop the flag")
        model = LogProbabilities(model)
        flags.append(flag("probability_outputs", "the model outputs probabilities; attacked through log p"))
    stochastic = is_random_at_inference(model, probe)
    if stochastic:
        switched, refused = [], []
        for attack in attacks:
            eot = eot_version(attack, eot_samples)
            (refused if eot is None else switched).append(attack if eot is None else eot)
        if refused:
            names = ", ".join(a.name for a in refused)
            raise ConfigError(f"the model is random at inference (two passes differ) and {names} has no EOT form; "
                              "drop it and use pgd/eot_pgd (or the attacks' EOT versions)")
        changed = [f"{a.name} -> {b!r}" for a, b in zip(attacks, switched) if a is not b]
        attacks = switched
        flags.append(flag("random_inference", "the model is random at inference; gradient attacks use EOT over "
                          f"{eot_samples} draws" + (f" ({'; '.join(changed)})" if changed else "")))
    return model, list(attacks), flags, stochastic


def gradient_flags(model, x, y, threshold=0.5):
    """Flags zero or non-finite input gradients of the loss on most of ``x``.

    Raised if: more than ``threshold`` of the samples have an all-zero, or any non-finite,
    gradient of the training loss with respect to the input.
    """
    x = tf.convert_to_tensor(x[:PROBE], tf.float32)
    y = tf.convert_to_tensor(np.asarray(y[:PROBE]), tf.int32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = loss_per_sample(tf.convert_to_tensor(model(x, training=False)), y)
    grad = tape.gradient(loss, x)
    if grad is None:
        return [flag("no_gradients", "the loss has no gradient with respect to the input (not differentiable); "
                     "only black-box attacks apply")]
    grad = np.asarray(grad).reshape(len(x), -1)
    flags = []
    nonfinite = np.mean(~np.all(np.isfinite(grad), axis=1))
    zero = np.mean(np.all(grad == 0, axis=1))
    if nonfinite > 0:
        flags.append(flag("nonfinite_gradients", f"{nonfinite:.0%} of the probed inputs have NaN/Inf input gradients"))
    if zero > threshold:
        flags.append(flag("zero_gradients", f"{zero:.0%} of the probed inputs have all-zero input gradients "
                          "(saturated or masked): gradient attacks cannot move them"))
    return flags


def refuse_nonfinite_gradients(flags, attacks):
    """Raises NonFiniteGradientError if ``flags`` hold ``nonfinite_gradients`` and an attack uses gradients.

    A gradient attack stepping along NaN goes nowhere and reports the clean accuracy as
    robust accuracy: a wrong number, so it is refused, not flagged (issue 30, item 4). The
    black-box attacks (ZOO, Square) need no gradient and still run, with the flag.
    """
    found = [f for f in flags if f["flag"] == "nonfinite_gradients"]
    gradient = [a.name for a in attacks if not isinstance(a, attack_lib.BLACK_BOX)]
    if found and gradient:
        raise NonFiniteGradientError(
            f"{found[0]['detail']}: {', '.join(gradient)} would step along NaN and report robustness the model "
            "does not have; fix the model's numerics (e.g. sqrt or log at 0) or attack it with black-box attacks "
            "only (--attacks=square,zoo)")


def unbounded_flags(model, x, y, *, steps=20, stochastic=False, eot_samples=20, seed=0):
    """Flags accuracy above 0 under PGD at ε = 1 (l∞), where every image is reachable.

    Raised if: some of the first :data:`PROBE` inputs stay correctly classified.
    """
    # From x, not a random start: a uniformly random image of the ε = 1 ball is noise, where a
    # ReLU net's gradients can vanish (measured: LeNet-5 kept 6 % accuracy from random starts,
    # 0 % from x).
    if stochastic:
        attack = attack_lib.EOTPGD(eps=1.0, step_size=0.1, steps=steps, samples=eot_samples, random_start=False)
    else:
        attack = attack_lib.PGD(eps=1.0, step_size=0.1, steps=steps, random_start=False)
    result = attack.run(model, x[:PROBE], y[:PROBE], seed=seed)
    if result.adv_accuracy > 0:
        return [flag("accuracy_not_zero_at_large_eps",
                     f"accuracy {result.adv_accuracy:.4f} under {attack!r} at eps 1 (any image reachable) is not 0: "
                     "the gradients do not lead to the decision boundary (masking) or the attack is too weak")]
    return []


def attack_failure_flags(report, majority=0.5, other=0.1):
    """Flags a minimal-perturbation attack failing on most points while another succeeds.

    Raised if: one attack's failures exceed ``majority`` of the clean-correct points while
    another minimal-perturbation attack fails on fewer than ``other`` of them (e.g. ZOO
    within its query budget next to C&W): its r2 is then not a robustness figure.
    """
    correct = report["clean_accuracy"] * report["n"]
    if correct == 0:
        return []
    rates = {k: e["failures"] / correct for k, e in report["attacks"].items() if "failures" in e}
    flags = []
    for key, rate in rates.items():
        strong = [k for k, r in rates.items() if k != key and r < other]
        if rate > majority and strong:
            flags.append(flag("attack_mostly_fails", f"{key} failed on {rate:.0%} of the clean-correct points while "
                              f"{', '.join(strong)} failed on fewer than {other:.0%}: its r2 measures the attack, "
                              "not the model"))
    return flags
