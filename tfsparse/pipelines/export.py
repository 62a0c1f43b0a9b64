"""``export_model(config, model_path, output)``: a trained model to deployable artifacts (scripts/export.py).

Order of work, so bad input costs nothing: the formats and the output folder are checked,
then the model and its dataset load and their shapes are compared, and only then
:func:`tfsparse.export.export` writes the artifacts (atomically: all of them or nothing)
with ``export.json``. With ``robustness.enabled`` the artifacts are then attacked
(:func:`artifact_robustness`) and ``robustness.json`` is written beside them.

Why re-measure: conversion and quantisation change a model's decisions near the boundary, so
a robust accuracy measured on the float training model need not hold for the int8 file on a
phone. A TFLite model has no gradients, so each artifact faces the attacks that do not need
its gradients: PGD crafted on the float model (transfer) and Square (black box), beside the
float model's own clean / white-box PGD / Square accuracy on the same images.
"""

import os

from tfsparse import attacks
from tfsparse import evaluation
from tfsparse import export
from tfsparse import metrics
from tfsparse import model_io
from tfsparse import results
from tfsparse import sanity
from tfsparse.compat import xla_setting
from tfsparse.errors import ConfigError
from tfsparse.errors import RunDirError
from tfsparse.model_io import load_keras_model
from tfsparse.pipelines._build import check_model_fits
from tfsparse.pipelines._build import check_subset_size
from tfsparse.pipelines._build import eval_subset
from tfsparse.pipelines._build import load_data
from tfsparse.pipelines._run import check_writable

ROBUSTNESS_FILE = "robustness.json"
# Columns of the artifact-robustness table. PGD is white box on the float model and a
# transfer from the float model on each artifact.
MEASURES = (("clean", "clean"), ("pgd", "PGD"), ("square", "Square"))


def parse_formats(text):
    """``"saved_model,tflite"`` → ``("saved_model", "tflite")``; ConfigError on an unknown name."""
    names = tuple(part.strip() for part in str(text).split(",") if part.strip())
    unknown = [name for name in names if name not in export.FORMATS]
    if not names or unknown:
        raise ConfigError(f"--formats: unknown {unknown or 'empty list'}; choose from {', '.join(export.FORMATS)}")
    return names


def export_model(config, model_path, output, log=print):
    """Exports the Keras model at ``model_path`` to ``output`` in ``config.export.formats``.

    Returns:
      The export report (also in ``output/export.json``), with ``robustness`` added when
      ``config.robustness.enabled``.

    Raises:
      tfsparse.errors.UsageError: on an unknown format, a taken output folder, an unloadable
        model, bad data, a model/data shape mismatch, outputs that do not fit the classes, or
        more check / robustness images than the test split has.
    """
    formats = parse_formats(config.export.formats)
    if os.path.exists(output) and (not os.path.isdir(output) or os.listdir(output)):
        raise RunDirError(f"--output {output} already exists; choose a new folder")
    check_writable(output, "--output")
    if config.robustness.enabled and config.export.inference_noise == "on":
        raise ConfigError("the robustness step attacks deterministic artifacts; use --inference_noise=off, or "
                          "evaluate the noisy SavedModel with scripts/evaluate.py (EOT)")
    model = load_keras_model(model_path)
    dataset = load_data(config.data)
    check_model_fits(model, dataset, "choose the dataset the model was trained on (--representative_data)")
    cfg = config.export
    check_subset_size(dataset, cfg.check_examples, "export.check_examples")
    if config.robustness.enabled:
        check_subset_size(dataset, config.robustness.num_examples, "robustness.num_examples")
        note = sanity.step_note(config.robustness.eps, config.robustness.pgd_step_size, "robustness.pgd")
        if note:
            log(note)
    report = export.export(
        model, output, formats, inference_noise=cfg.inference_noise,
        representative_data=dataset.x_train[:cfg.representative_examples] if "tflite_int8" in formats else None,
        check_inputs=dataset.x_test[:cfg.check_examples], latency_runs=cfg.latency_runs, threads=cfg.threads,
        sparse_tflite=cfg.sparse_tflite, log=log,
    )
    log(export.format_table(report))
    if config.robustness.enabled:
        report["robustness"] = artifact_robustness(model, output, report, dataset, config, log=log)
        results.write_json(os.path.join(output, ROBUSTNESS_FILE), report["robustness"])
        log(format_robustness(report["robustness"]))
    return report


def artifact_robustness(model, output, report, dataset, config, log=print):
    """Clean / PGD / Square accuracy of the float model and of every artifact in ``report``.

    The float model is the exported one before conversion (wrappers stripped, noise off). Its
    PGD is white box; on an artifact the same PGD runs on the float model and its examples are
    scored on the artifact (a transfer), since a TFLite model has no gradients. Square
    (Andriushchenko et al. 2020) queries each model itself. Every artifact accuracy outside the
    float model's Wilson interval (``robustness.confidence``) is flagged.

    Returns:
      ``{"num_examples", "eps", "confidence", "float": {measure: {"accuracy", "interval"}},
      "artifacts": {format: {measure: accuracy}}, "flags": [{"format", "measure", "detail"}]}``.
    """
    cfg = config.robustness
    x, y = eval_subset(dataset, cfg.num_examples)
    float_model = export.without_noise(model)
    jit = xla_setting(config.xla)
    pgd = attacks.PGD(eps=cfg.eps, step_size=cfg.pgd_step_size, steps=cfg.pgd_steps, random_start=True,
                      jit_compile=jit)

    def square(jit_compile):
        return attacks.Square(eps=cfg.eps, max_queries=cfg.square_queries, p_init=cfg.square_p_init,
                              jit_compile=jit_compile)

    def measured(target, suite):
        first, second = suite
        return evaluation.measure(target, x, y, [("clean", "clean"), ("pgd", first), ("square", second)],
                                  batch_size=cfg.batch_size, seed=config.seed)

    log(f"robustness: float model, {len(x)} test images, eps {cfg.eps:g}")
    reference = measured(float_model, [pgd, square(jit)])
    found = {"num_examples": len(x), "eps": cfg.eps, "confidence": cfg.confidence,
             "float": {m: {"accuracy": a, "interval": list(metrics.wilson_interval(a, len(x), cfg.confidence))}
                       for m, a in reference.items()},
             "artifacts": {}, "flags": []}
    for name, entry in report["formats"].items():
        if "path" not in entry:  # a format that could not be produced (e.g. a failed sparse conversion)
            continue
        log(f"robustness: {name}")
        artifact = model_io.load_model(os.path.join(output, entry["path"]))
        transfer = attacks.TransferAttack(source_model=float_model, attack=pgd, jit_compile=False)
        found["artifacts"][name] = measured(artifact, [transfer, square(False)])
        for measure, accuracy in found["artifacts"][name].items():
            low, high = found["float"][measure]["interval"]
            if not low <= accuracy <= high:
                found["flags"].append({"format": name, "measure": measure, "detail": (
                    f"{name}: {measure} accuracy {accuracy:.4f} lies outside the float model's "
                    f"{cfg.confidence:.0%} interval [{low:.4f}, {high:.4f}]")})
    return found


def format_robustness(found):
    """A plain-text table: the float model's row, then one row per artifact, then the flags."""
    header = f"{'model':<14}" + "".join(f"{title:>10}" for _, title in MEASURES)
    lines = [f"accuracy at eps {found['eps']:g} on {found['num_examples']} test images "
             "(PGD: white box on float, transferred from float on artifacts)", header,
             f"{'float':<14}" + "".join(f"{found['float'][m]['accuracy']:>10.4f}" for m, _ in MEASURES)]
    for name, row in found["artifacts"].items():
        lines.append(f"{name:<14}" + "".join(f"{row[m]:>10.4f}" for m, _ in MEASURES))
    lines.extend(f"FLAG {flag['detail']}" for flag in found["flags"])
    return "\n".join(lines)
