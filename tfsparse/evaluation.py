"""Robustness evaluation of one model under a suite of attacks (SPEC §6, §7; AutoAttack style).

:func:`evaluate` runs every attack on the same samples and returns one flat, JSON-ready record:
clean accuracy, per attack its parameters, the metric that fits its kind, success rate and wall
time, the per-sample worst case across the fixed-budget attacks, and gradient-masking warnings.
"""

import time

import numpy as np

from tfsparse import sanity
from tfsparse.attacks import FGSM
from tfsparse.attacks import RFGSM
from tfsparse.attacks import BLACK_BOX
from tfsparse.attacks import AutoAttack
from tfsparse.attacks import labels_from_logits
from tfsparse.attacks.base import AttackResult
from tfsparse.attacks.base import as_batch
from tfsparse.certification import Certificate
from tfsparse.compat import tf
from tfsparse.errors import ConfigError
from tfsparse.metrics import diagnostics
from tfsparse.metrics.robustness import minimal_distances
from tfsparse.metrics.robustness import predict_logits

_SINGLE_STEP = (FGSM, RFGSM)


def _key(attack, taken):
    key, n = attack.name, 2
    while key in taken:
        key, n = f"{attack.name}_{n}", n + 1
    return key


def run_sharded(attack, model, x, y, *, strategy, batch_size=500, seed=0):
    """``attack.run`` with its batches dealt over the replicas of a ``tf.distribute`` strategy.

    The batches are those of :meth:`~tfsparse.attacks.base.Attack.run` (``batch_size``
    samples, batch ``i`` seeded ``(seed, i)``); in round ``k`` replica ``r`` attacks batch
    ``k·R + r`` through ``strategy.run`` (the last round repeats the last batch on the idle
    replicas and drops the copies), and ``strategy.gather`` brings every replica's per-sample
    outputs to every process. Each batch is computed exactly as ``attack.run`` computes it, so
    the result equals the single-process one sample for sample. Under a
    ``MultiWorkerMirroredStrategy`` the replicas are spread over the workers: each worker
    attacks its replicas' batches only, and every worker receives the whole result (every
    worker must call this, with the same arguments).

    Args:
      attack: a :class:`~tfsparse.attacks.Attack`.
      model: the model, with plain (not distributed) variables; each worker holds its own copy.
      x, y: the inputs and labels, the same on every worker.
      strategy: ``MirroredStrategy``, ``MultiWorkerMirroredStrategy``, ...
      batch_size, seed: as in ``Attack.run``.

    Returns:
      An :class:`~tfsparse.attacks.base.AttackResult` over all samples.
    """
    x, y = as_batch(x, y)
    fn = attack.graph_function(model, x.shape[1:])
    starts = list(range(0, len(x), batch_size))
    replicas = strategy.num_replicas_in_sync
    batches = {}
    for first in range(0, len(starts), replicas):
        ids = [min(first + r, len(starts) - 1) for r in range(replicas)]

        def inputs(context, ids=ids):
            i = ids[context.replica_id_in_sync_group]
            part = slice(starts[i], starts[i] + batch_size)
            return tf.constant(x[part]), tf.constant(y[part]), tf.constant([seed, i], tf.int64)

        per_replica = strategy.run(lambda args: _numbers(fn(*args)),
                                   args=(strategy.experimental_distribute_values_from_function(inputs),))
        gathered = [strategy.gather(output, axis=0).numpy() for output in per_replica]
        offset = 0
        for i in ids:
            size = len(x[starts[i]:starts[i] + batch_size])
            batches.setdefault(i, [g[offset:offset + size] for g in gathered])
            offset += size
    x_adv, clean_correct, adv_correct, l2, linf, queries = (np.concatenate(parts) for parts in
                                                            zip(*(batches[i] for i in range(len(starts)))))
    clean_correct, adv_correct = clean_correct.astype(bool), adv_correct.astype(bool)
    return AttackResult(x_adv=x_adv, success=clean_correct & ~adv_correct, clean_correct=clean_correct,
                        adv_correct=adv_correct, l2=l2, linf=linf, params=attack.params,
                        queries=queries.astype(np.int64) if attack.counts_queries else None)


def _numbers(outputs):
    # Collective gathers take numbers, not booleans (the correctness flags).
    return tuple(tf.cast(o, tf.int32) if o.dtype == tf.bool else o for o in outputs)


def evaluate(model, x, y, attacks, *, batch_size=500, progress=False, seed=0, stochastic=False, strategy=None,
             adversarial_examples=False, certificates=()):
    """Runs ``attacks`` on ``(x, y)`` and summarises each, plus the worst case per sample.

    Every attack runs on all samples, so each attack's numbers stand alone. Fixed-budget attacks
    (those with an ε-ball: FGS, rFGS, PGD, EOT-PGD, a transfer of them) report ``accuracy``
    (robust accuracy over all samples; for FGS / rFGS that is Guo's ``r_inf``). Minimal-
    perturbation attacks (DeepFool, C&W, ZOO) report ``mean_l2`` over the flipped samples and
    Guo's ``r2`` (misclassified count as 0; failures, counted in ``failures``, left out: the rule
    of :func:`tfsparse.metrics.robustness.minimal_distances`). Every entry
    has ``params`` (with ``name``), ``repr``, ``success_rate`` (over the clean-correct samples) and
    ``seconds`` (the attack's wall time only); AutoAttack adds ``stages``, one
    ``{"name", "attacked", "robust_accuracy", "seconds"}`` per stage that ran
    (:class:`~tfsparse.attacks.autoattack.AutoAttackResult`); black-box attacks (ZOO, Square, transfer) add
    ``success_rate_all``, the fraction of all samples misclassified after the attack (RSR Table 3's
    count, which includes the samples already misclassified clean). ``worst_case`` combines the l∞ fixed-budget attacks per sample (AutoAttack's
    robust accuracy: a sample is robust only if no attack fooled it); ``flags`` holds the
    :mod:`tfsparse.metrics.diagnostics` findings as ``{"flag", "detail"}`` (ids in
    docs/EVALUATION_FLAGS.md) and ``warnings`` their texts.

    Example::

        report = evaluate(model, x_test[:1000], y_test[:1000],
                          [FGSM(eps=0.1), PGD(eps=0.1, step_size=0.01, steps=40), DeepFool()])
        print(report["attacks"]["pgd"]["accuracy"], report["worst_case"]["accuracy"])

    Args:
      model: Keras model (or callable accepting ``training=``) returning logits.
      x: inputs ``(N, ...)`` in [0, 1].
      y: integer labels ``(N,)``.
      attacks: sequence of :class:`~tfsparse.attacks.Attack`; repeated names get ``_2``, ``_3``.
      batch_size: samples per traced attack call.
      progress: tqdm progress bars.
      seed: seed of every attack run.
      stochastic: the model is random at inference although no layer says so (adds the EOT check).
      strategy: a ``tf.distribute`` strategy to shard every attack's batches over its replicas
        and workers (:func:`run_sharded`; the report equals the single-process one but for
        ``seconds``), or None.
      adversarial_examples: also keep each attack's examples as ``x_adv`` in its entry (e.g. for
        the loss on them); off by default, so reports stay JSON-sized.
      certificates: :class:`tfsparse.certification.Certificate` s (IBP, CROWN, CROWN-IBP at a
        radius): each adds ``certified[name]`` = ``{"accuracy", "method", "norm", "eps",
        "seconds", "violations"}``. The sanity rule certified ≤ attacked ≤ clean is checked per
        image: an image certified but misclassified clean, or fooled by an attack of the same
        norm and no larger ε, is a bug (of the bound or the attack); then ``accuracy`` is None
        and the flag ``certified_but_attacked`` names the count.

    Returns:
      ``{"n", "clean_accuracy", "attacks": {key: {...}}, "worst_case": {...} or None,
      "certified": {name: {...}}, "flags": [...], "warnings": [...]}``.

    Raises:
      ValueError: on bad inputs or an empty ``attacks``.
      tfsparse.errors.NonFiniteOutputError: the model outputs NaN or Inf on some of ``x``.
      tfsparse.errors.ConfigError: inputs outside [0, 1], probability outputs, or fewer outputs
        than the labels need (:func:`tfsparse.sanity.check_evaluable`): every entry point that
        measures (``measure``, ``evaluate_dataset``, every table) passes here.
    """
    attacks, certificates = list(attacks), list(certificates)
    if not attacks and not certificates:
        raise ValueError("attacks must name at least one attack (or certificates one certificate)")
    sanity.check_budgets(attacks, "eps")
    x, y = as_batch(x, y)
    sanity.check_inputs(x)  # before the model sees them
    logits = predict_logits(model, x, batch_size)
    sanity.check_evaluable(x, y, logits)  # before any number is drawn from them
    clean_correct = labels_from_logits(tf.convert_to_tensor(logits)).numpy() == y
    report = {"n": len(x), "clean_accuracy": float(np.mean(clean_correct)), "attacks": {}}
    robust = clean_correct.copy()
    linf_attacks, fooled = [], []
    by_kind = {"single": [], "multi": [], "black": [], "ensemble": []}
    for attack in attacks:
        start = time.perf_counter()
        if strategy is None:
            result = attack.run(model, x, y, batch_size=batch_size, seed=seed, progress=progress)
        else:
            result = run_sharded(attack, model, x, y, strategy=strategy, batch_size=batch_size, seed=seed)
        entry = {
            "params": attack.params,
            "repr": repr(attack),
            "success_rate": result.success_rate,
            "seconds": time.perf_counter() - start,
        }
        if attack.eps_ball is not None:
            fooled.append((attack.eps_ball, repr(attack), ~np.asarray(result.adv_correct)))
            entry["accuracy"] = result.adv_accuracy
            if isinstance(attack, _SINGLE_STEP):
                entry["r_inf"] = result.adv_accuracy
            if attack.eps_ball[0] == "linf":
                robust &= result.adv_correct
                linf_attacks.append(repr(attack))
                kind = "black" if isinstance(attack, BLACK_BOX) else (
                    "single" if isinstance(attack, _SINGLE_STEP) else
                    "ensemble" if isinstance(attack, AutoAttack) else "multi")
                by_kind[kind].append((attack.eps_ball[1], result.adv_accuracy))
        else:
            entry.update(minimal_distances(result))
        if isinstance(attack, BLACK_BOX):
            # RSR Table 3 counts ZOO's success over all test samples ("classified to a wrong
            # class by the attack"), not over the clean-correct ones as success_rate does.
            entry["success_rate_all"] = float(np.mean(~result.adv_correct))
        if result.queries is not None:
            entry["queries_per_sample"] = int(result.queries.max())
        if getattr(result, "stages", None):
            # AutoAttack: robust accuracy and seconds after each stage, as the reference prints them.
            entry["stages"] = [dict(stage) for stage in result.stages]
        if adversarial_examples:
            entry["x_adv"] = result.x_adv
        report["attacks"][_key(attack, report["attacks"])] = entry
    report["worst_case"] = (
        {"accuracy": float(np.mean(robust)), "attacks": linf_attacks} if linf_attacks else None
    )
    report["certified"], certified_flags = _certified(model, x, y, certificates, clean_correct, fooled, batch_size)
    report["flags"] = (sanity.budget_notes(attacks) + _flags(model, attacks, by_kind, stochastic, len(x))
                       + certified_flags)
    report["warnings"] = [f["detail"] for f in report["flags"]]
    return report


def _certified(model, x, y, certificates, clean_correct, fooled, batch_size):
    """The certificates' entries and the ``certified_but_attacked`` flags (see :func:`evaluate`)."""
    entries, flags = {}, []
    for certificate in certificates:
        start = time.perf_counter()
        found = certificate.run(model, x, y, batch_size=min(batch_size, 100))
        contradicted, by = found.certified & ~clean_correct, []
        for (norm, eps), name, wrong in fooled:
            if norm == certificate.norm and eps <= certificate.eps + 1e-12 and np.any(found.certified & wrong):
                contradicted, by = contradicted | (found.certified & wrong), by + [name]
        entry = {"accuracy": found.accuracy, "method": certificate.method, "norm": certificate.norm,
                 "eps": certificate.eps, "seconds": time.perf_counter() - start,
                 "violations": int(contradicted.sum())}
        if contradicted.any():
            entry["accuracy"] = None
            flags.append(sanity.flag("certified_but_attacked", (
                f"{certificate.name} at eps {certificate.eps:g} certified {int(contradicted.sum())} image(s) that "
                f"are misclassified clean or fooled by {', '.join(by) or 'no attack'}: a bound or an attack is "
                f"wrong, so no certified accuracy is reported")))
        entries[_key_name(certificate.name, entries)] = entry
    return entries, flags


def _key_name(name, taken):
    key, number = name, 2
    while key in taken:
        key, number = f"{name}_{number}", number + 1
    return key


def _flags(model, attacks, by_kind, stochastic, n):
    found = [sanity.flag("no_eot", w)
             for w in diagnostics.check_eot_for_stochastic_model(model, attacks, stochastic=stochastic)]
    for eps, ensemble in by_kind["ensemble"]:
        # Per-sample luck of one restart can move a few points: allow 1 % (or 3 points).
        for eps_multi, multi in by_kind["multi"]:
            if eps_multi == eps:
                found += [sanity.flag("ensemble_weaker", w) for w in diagnostics.check_ensemble_not_weaker(
                    ensemble, multi, tol=max(0.01, 3 / max(n, 1)))]
    for eps, multi in by_kind["multi"] + by_kind["ensemble"]:
        for eps_single, single in by_kind["single"]:
            if eps_single == eps:
                found += [sanity.flag("multi_step_weaker", w)
                          for w in diagnostics.check_multi_step_not_weaker(single, multi)]
        for eps_black, black in by_kind["black"]:
            if eps_black == eps:
                found += [sanity.flag("black_box_stronger", w)
                          for w in diagnostics.check_white_box_beats_black_box(multi, black)]
    return found


# The report-level values a :func:`measure` column can name instead of an attack's entry.
REPORT_VALUES = {
    "n": lambda report: report["n"],
    "clean": lambda report: report["clean_accuracy"],
    "worst_case": lambda report: report["worst_case"]["accuracy"] if report["worst_case"] else None,
    "warnings": lambda report: report["warnings"],
    "flags": lambda report: [flag["flag"] for flag in report["flags"]],
    "reprs": lambda report: {key: entry["repr"] for key, entry in report["attacks"].items()},
}
OPTIONAL_STATS = ("queries_per_sample",)  # absent for attacks that do not count queries


def measure(model, x, y, columns, **kwargs):
    """The one measure path: :func:`evaluate` as one flat record under a table's own column names.

    Every table, ``train`` / ``prune`` / ``tune``, the artifact check of ``export`` and the
    training callbacks measure through this function; what differs between them is the
    mapping ``columns`` (a table's column names), not another wrapper.

    Example::

        pgd = PGD(eps=0.3, step_size=0.01, steps=40)
        measure(model, x, y, [("pgd_accuracy", pgd), ("pgd", pgd, "repr"), ("num_eval", "n")])

    Args:
      model, x, y: as in :func:`evaluate`.
      columns: ``[(field, source)]`` or ``[(field, attack, stat)]`` in record order. An
        attack as source is its ``accuracy``; ``(field, attack, stat)`` any key of its report
        entry (``r2``, ``failures``, ``mean_l2``, ``repr``, ``success_rate``,
        ``success_rate_all``, ``seconds``, ``queries_per_sample`` — None when not counted —,
        ``x_adv`` with ``adversarial_examples=True``); a
        :class:`~tfsparse.certification.Certificate` as source is its certified ``accuracy``
        (stats ``violations``, ``seconds``);
        an attack of None leaves the field None (a column the table leaves empty for this
        model, e.g. EOT-PGD on a deterministic one); a string source is a report-level value
        of :data:`REPORT_VALUES` (``n``, ``clean`` accuracy of ``(x, y)``, ``worst_case``
        accuracy over the l∞ attacks, ``warnings``, ``flags`` ids, ``reprs``). The distinct
        attacks (by identity) form the suite, in order of first use.
      **kwargs: ``batch_size``, ``seed``, ``stochastic``, ``strategy``, ``progress``,
        ``adversarial_examples`` of :func:`evaluate`.

    Returns:
      ``{field: value}`` in the order of ``columns``.

    Raises:
      ValueError: an unknown report value or stat, or no attack at all.
    """
    suite, certificates = [], []
    for column in columns:
        source = column[1]
        chosen = certificates if isinstance(source, Certificate) else suite
        if not isinstance(source, str) and source is not None and all(source is not a for a in chosen):
            chosen.append(source)
    report = evaluate(model, x, y, suite, certificates=certificates, **kwargs)
    entries = dict(zip((id(attack) for attack in suite), report["attacks"].values()))
    entries.update(zip((id(certificate) for certificate in certificates), report["certified"].values()))
    record = {}
    for field, source, *stat in columns:
        if isinstance(source, str):
            if source not in REPORT_VALUES:
                raise ValueError(f"measure: {field}: unknown report value {source!r}; choose from {sorted(REPORT_VALUES)}")
            record[field] = REPORT_VALUES[source](report)
        elif source is None:
            record[field] = None
        else:
            entry, stat = entries[id(source)], (stat or ["accuracy"])[0]
            if stat not in entry and stat not in OPTIONAL_STATS:
                raise ValueError(f"measure: {field}: {source.name} reports no {stat!r}; it has {sorted(entry)}")
            record[field] = entry.get(stat)
    return record


def black_box_columns(attack, prefix):
    """The columns of a black-box attack (e.g. ZOO, Chen et al. 2017) as ``<prefix>_*`` fields of :func:`measure`.

    Its success is counted both ways: ``success_over_correct`` over the clean-correct samples
    (Chen et al.'s count) and ``success_over_samples`` over all attacked samples (Rakin et
    al. 2019, RSR Table 3: "classified to a wrong class by the attack"); beside them
    ``mean_l2`` over the flipped samples (NaN when none flipped), the clean accuracy and size
    of the sample, the attack's seconds and its queries per sample (None when not counted).
    """
    stats = (("success_over_correct", "success_rate"), ("success_over_samples", "success_rate_all"),
             ("mean_l2", "mean_l2"))
    return ([(f"{prefix}_{field}", attack, stat) for field, stat in stats]
            + [(f"{prefix}_clean_accuracy", "clean"), (f"{prefix}_num_examples", "n"),
               (f"{prefix}_seconds", attack, "seconds"), (f"{prefix}_queries_per_sample", attack, "queries_per_sample")])


ALIASES = {"cw": "cw_l2", "eot": "eot_pgd", "fgs": "fgsm", "rfgs": "rfgsm", "aa": "autoattack",
           "apgd_ce": "apgd", "apgdt": "apgd_t", "fab": "fab_t"}


def build_attacks(names, eps, config):
    """Attacks from short names (``ATTACKS`` keys or ``cw``/``eot``/``fgs``/``rfgs``).

    Args:
      names: attack names in order.
      eps: the budget given to every fixed-ε attack (pixel units, ≥ 0).
      config: ``configs/evaluate.py`` ConfigDict: ``config.attacks[name]`` holds the defaults.

    Returns:
      A list of attacks.

    Raises:
      tfsparse.errors.ConfigError: on an unknown or repeated name (an alias counts as its
        attack: the same attack twice would run twice for one column), ``eps < 0``, an l∞
        ``eps`` above 1 (:func:`tfsparse.sanity.check_budgets`) or a bad attack parameter.
    """
    from tfsparse.attacks import ATTACKS
    from tfsparse.attacks.base import FixedEpsilonAttack

    if not eps >= 0:
        raise ConfigError(f"--eps must be >= 0, got {eps}")
    if not names:
        raise ConfigError("--attacks is empty; name at least one attack")
    attacks, seen = [], {}
    for raw in names:
        name = ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if name not in ATTACKS:
            known = ", ".join(sorted(set(ATTACKS) | set(ALIASES)))
            raise ConfigError(f"unknown attack {raw!r}; choose from {known}")
        if name in seen:
            same = f"{seen[name]!r} and {raw!r} are both {name}" if seen[name] != raw else f"{raw!r} twice"
            raise ConfigError(f"--attacks names {same}; list each attack once")
        seen[name] = raw
        params = dict(config.attacks[name]) if name in config.attacks else {}
        cls = ATTACKS[name]
        if issubclass(cls, FixedEpsilonAttack):
            params["eps"] = eps
        try:
            attacks.append(cls(**params))
        except (TypeError, ValueError) as error:
            raise ConfigError(f"attack {name}: {error}") from None
    sanity.check_budgets(attacks)
    return attacks


def check_model_output(model, x):
    """Raises ConfigError unless ``model`` takes ``x``'s shape and maps a batch to logits ``(batch, C)``."""
    expected = getattr(model, "input_shape", None)
    if isinstance(expected, tuple) and len(expected) == x.ndim and any(d is not None for d in expected[1:]):
        if any(d is not None and d != actual for d, actual in zip(expected[1:], x.shape[1:])):
            raise ConfigError(f"the model takes inputs of shape {expected[1:]} but the data has images of shape "
                              f"{tuple(x.shape[1:])}; choose the dataset the model was trained on")
    out = np.asarray(model(x[:2], training=False))
    if out.ndim != 2 or out.shape[0] != len(x[:2]):
        raise ConfigError(
            f"the model output has shape {out.shape} for {len(x[:2])} inputs; expected logits "
            "of shape (batch, num_classes) or (batch, 1)"
        )
    return out.shape[1]


SUBSETS = ("first", "random")


def evaluate_dataset(model, attacks, *, dataset, data_dir=None, classes=None, num_examples=0,
                     batch_size=500, seed=0, progress=True, subset="first", model_outputs="logits",
                     eot_samples=20, check_unbounded=True, strategy=None):
    """Loads a dataset's test split, runs the acting sanity checks, then :func:`evaluate`.

    Before any attack: ``num_examples`` within the test split (0: all of it), one logit per
    class (:func:`tfsparse.sanity.check_outputs_for_classes`; with ``classes`` a model of the
    whole dataset is scored against the subset's original labels, a model of the subset
    against the renumbered 0..k-1), inputs in [0, 1], the model's input shape and logits shape, probability
    outputs refused (or attacked as log-probabilities with ``model_outputs="probabilities"``),
    a model random at inference attacked with the EOT forms (:func:`tfsparse.sanity.prepare`).
    Then the input gradients: NaN / Inf ones refuse every gradient attack
    (:func:`tfsparse.sanity.refuse_nonfinite_gradients`), all-zero ones are flagged. After:
    failing-attack and (``check_unbounded``) ε = 1 checks. All flags land in ``report["flags"]``.

    Args:
      subset: ``"first"`` — the first ``num_examples`` test images (RobustBench's convention) —
        or ``"random"`` — a seeded random subset.
      strategy: shard the attacks over a ``tf.distribute`` strategy (see :func:`evaluate`).

    Raises:
      tfsparse.data.DataError: on bad data.
      tfsparse.errors.ConfigError: if the output is not logits-shaped, its classes do not cover
        the labels, an image lies outside [0, 1], or a sanity check refuses the evaluation.
    """
    from tfsparse import data

    if subset not in SUBSETS:
        raise ConfigError(f"subset must be one of {SUBSETS}, got {subset!r}")
    loaded = data.load(dataset, data_dir, classes=classes or None, seed=seed)
    x, y = loaded.x_test, loaded.y_test.astype(np.int32)
    if num_examples > len(x):
        raise ConfigError(f"--num_examples={num_examples} but the {dataset} test split has {len(x):,} images; "
                          f"pass at most {len(x)}, or 0 for all of them")
    if num_examples and subset == "random":
        x, y = data.random_subset(x, y, num_examples, [seed, 1], what="--num_examples")
    elif num_examples:
        x, y = x[:num_examples], y[:num_examples]
    sanity.check_inputs(x)
    num_outputs, num_classes = check_model_output(model, x), loaded.num_classes
    if classes and num_outputs != num_classes:
        # A model of the whole dataset on a class subset: its labels go back to the model's indices.
        full = data.load(dataset, data_dir, seed=seed)
        if num_outputs == full.num_classes:
            y = np.array([full.class_names.index(name) for name in loaded.class_names], np.int32)[y]
            num_classes = full.num_classes
    sanity.check_outputs_for_classes(num_outputs, num_classes)
    model, attacks, flags, stochastic = sanity.prepare(model, x, attacks, model_outputs=model_outputs,
                                                       eot_samples=eot_samples)
    gradient_free = getattr(model, "gradient_free", False)  # e.g. a TFLite model: checks need gradients
    if not gradient_free:
        flags += sanity.gradient_flags(model, x, y)
        sanity.refuse_nonfinite_gradients(flags, attacks)
    report = evaluate(model, x, y, attacks, batch_size=batch_size, progress=progress, seed=seed,
                      stochastic=stochastic, strategy=strategy)
    flags += report["flags"] + sanity.attack_failure_flags(report)
    if check_unbounded and not gradient_free:
        flags += sanity.unbounded_flags(model, x, y, stochastic=stochastic, eot_samples=eot_samples, seed=seed)
    report["flags"] = flags
    report["warnings"] = [f["detail"] for f in flags]
    report["model_outputs"] = model_outputs
    report["random_at_inference"] = stochastic
    report["dataset"] = {"name": dataset, "classes": list(classes or []), "source": loaded.source,
                         "subset": subset, "num_examples": len(x)}
    return report


def format_table(report) -> str:
    """A plain-text table of a report: one row per attack, then the worst case and warnings."""
    header = ("attack", "accuracy", "mean_l2", "r2", "success", "seconds")
    lines = [
        f"clean accuracy {report['clean_accuracy']:.4f} on {report['n']} samples",
        f"{header[0]:<14} " + " ".join(f"{h:>9}" for h in header[1:]),
    ]

    def cell(value):
        return f"{value:>9.4f}" if value is not None else f"{'-':>9}"

    for key, entry in report["attacks"].items():
        lines.append(
            f"{key:<14} {cell(entry.get('accuracy'))} {cell(entry.get('mean_l2'))} "
            f"{cell(entry.get('r2'))} {cell(entry['success_rate'])} {entry['seconds']:>9.2f}"
        )
        for stage in entry.get("stages", ()):
            lines.append(f"{'  ' + stage['name']:<14} {cell(stage['robust_accuracy'])} {'':>9} {'':>9} "
                         f"{'':>9} {stage['seconds']:>9.2f}")
    if report["worst_case"] is not None:
        worst = report["worst_case"]["accuracy"]
        lines.append(f"worst case over l-inf attacks: accuracy {worst:.4f}")
    lines.extend(f"flag {f['flag']}: {f['detail']}" for f in report["flags"])
    return "\n".join(lines)
