"""``export(model, output, formats)``: every artifact in one folder, checked and measured."""

import contextlib
import os

import numpy as np

from tfsparse import errors
from tfsparse import results
from tfsparse.attacks.base import labels_from_logits
from tfsparse.compat import tf
from tfsparse.errors import ConfigError
from tfsparse.export import artifacts
from tfsparse.export import tflite
from tfsparse.export.saved_model import serving_signatures
from tfsparse.export.saved_model import without_noise
from tfsparse.export.saved_model import write_saved_model
from tfsparse.layers.noise import noisy_layers
from tfsparse.sparsity import has_pruning_wrappers
from tfsparse.sparsity import strip
from tfsparse.sparsity import structure_summary
from tfsparse.sparsity.prune import unwrap

FORMATS = ("saved_model", "tflite", "tflite_fp16", "tflite_int8")
NOISE_CHOICES = ("off", "on")
REPORT_FILE = "export.json"
SAVED_MODEL_DIR = "saved_model"
# Float artifacts must reproduce the source logits within ``atol + rtol · max|source logit|``
# on the check images (RuntimeError otherwise); int8 is only reported (top-1 agreement).
# Measured max |Δlogit| / max|source logit| (LeNet-5 random and 1-epoch MNIST weights,
# ResNet-20 random weights; 50% and 90% of each kernel zeroed; 200-500 images): SavedModel 0,
# TFLite float32 and sparse ≤ 6.6e-7 (fused ops, another summation order), float16 weights
# ≤ 5.5e-4 (half precision's 2^-11 rounding), int8 1e-2 to 1.9e-1. The tolerances leave
# ~100x (float32) and ~20x (float16) room for deeper models while a wrong bias, kernel or
# normalisation (errors of order 1e-2 and up) still fails.
TOLERANCES = {
    "saved_model": (1e-5, 1e-5),
    "tflite": (1e-5, 1e-4),
    "tflite_sparse": (1e-5, 1e-4),
    "tflite_fp16": (1e-3, 1e-2),
}
CHECK_SEED = 0  # serving_seeded's seed when the noisy SavedModel is checked
_BATCH = 256


def export(model, output, formats=("saved_model", "tflite"), *, inference_noise="off",
           representative_data=None, check_inputs=None, latency_runs=50, threads=1,
           sparse_tflite=True, log=None):
    """Exports ``model`` to SavedModel and/or TFLite in ``output``, checks and measures each.

    Every artifact has the same interface: float32 ``images`` in [0, 1] (NHWC, any batch size)
    → float32 logits; the int8 TFLite model quantises inside (full integer quantisation keeps
    float32 input and output). Pruning wrappers are stripped first, so kernels hold real
    zeros; a filter-pruned or slimmed model is exported as the narrow model it is.

    Files (paths in the report are relative to ``output``): ``saved_model/`` (signature
    ``serving_default(images)``, plus ``serving_seeded(images, seed)`` with noise on),
    ``model.tflite`` (float32), ``model_sparse.tflite`` (float32, kernels sparse-encoded by
    ``Optimize.EXPERIMENTAL_SPARSITY``; tried with ``tflite`` when ``sparse_tflite``; a failed
    conversion is recorded as ``error``, not raised), ``model_fp16.tflite`` (float16 weights),
    ``model_int8.tflite`` (int8 weights and activations, calibrated on
    ``representative_data``), and ``export.json``, the report. Everything is written to a
    new folder of a unique name beside ``output`` (``<output>.partial-XXXXXXXX``, see
    :func:`tfsparse.results.atomic_dir`) and renamed at the end: ``output`` holds all
    artifacts or nothing, and no existing folder is touched.

    Measured per format: bytes on disk and gzip bytes (tfmot's measure of what zeros save,
    see :func:`artifacts.gzip_bytes`), params / non-zero params / weight sparsity counted in
    the artifact (:mod:`tfsparse.export.artifacts`), the source's FLOPs
    (:func:`tfsparse.sparsity.structure_summary`, equal for every format), max |Δlogit| and
    top-1 agreement against the source on ``check_inputs``, and TFLite latency (batch 1,
    median of ``latency_runs`` runs on ``threads`` threads; ``None`` for the SavedModel).

    Args:
      model: a functional or Sequential tf_keras model returning logits (pruning wrappers and
        CNI/PNI layers allowed), or an ``AdversarialModel`` (the model it trains is exported).
      output: the folder to create; it must not exist or be empty.
      formats: names from :data:`FORMATS`.
      inference_noise: ``"off"``: CNI/PNI layers are exported as plain ``Conv2D``/``Dense``
        (:func:`without_noise`; deterministic, convertible). ``"on"``: the SavedModel keeps
        the noise switched on; ``serving_default`` draws fresh noise per call and
        ``serving_seeded(images, seed)`` (int64 scalar) draws it from ``seed``. TFLite cannot
        hold the random ops, so "on" allows ``saved_model`` only. Ignored without noise layers.
      representative_data: [0, 1] images of the model's own dataset (100–200 suffice), needed
        for ``tflite_int8``.
      check_inputs: held-out [0, 1] images the artifacts are checked on; None skips checks.
        With noise on, ``serving_seeded`` is compared with the live model on the same seed.
      latency_runs: timed TFLite invocations (0 skips timing).
      threads: TFLite interpreter threads.
      sparse_tflite: also try ``model_sparse.tflite`` (format ``tflite_sparse``).
      log: callable receiving progress lines.

    Returns:
      The report (plain JSON types), also written to ``output/export.json``:

      * ``source``: ``params``, ``nonzero_params``, ``weight_sparsity``, ``flops``,
        ``inference_noise`` ("on" only if the model has noise layers and kept them),
        ``noise_layers``.
      * ``formats``: per format, in the order written: ``path`` (relative to ``output``),
        ``bytes``, ``gzip_bytes``, ``params``, ``nonzero_params``, ``weight_sparsity``,
        ``flops``, ``max_abs_logit_diff``, ``tolerance`` (None for int8),
        ``top1_agreement`` (the last three None without ``check_inputs``), ``latency_ms``
        (``{"median", "runs", "threads", "batch"}``, None for the SavedModel or with
        ``latency_runs=0``); ``signatures`` for the SavedModel, ``sparse_tensors`` for
        ``tflite_sparse``. A sparse conversion that failed has only ``error``.
      * ``input_shape``, ``check_examples``, and the sentences ``checks`` and ``gzip``.

    Raises:
      ConfigError: for an unknown format or ``inference_noise``, TFLite with noise on, int8
        without representative data, inputs that do not fit the model, or a non-empty
        ``output``; nothing is written then.
      RuntimeError: if a float artifact misses its tolerance; nothing is published.

    Example:

    >>> report = export(model, "runs/a/export", ("saved_model", "tflite", "tflite_int8"),
    ...                 representative_data=x_train[:200], check_inputs=x_test[:500])
    >>> print(format_table(report))
    """
    formats = _requested(formats, sparse_tflite)
    model = unwrap(model)
    noisy = _noise_on(inference_noise, bool(noisy_layers(model)), formats)
    representative_data, check_inputs = (None if images is None else np.asarray(images, np.float32)
                                         for images in (representative_data, check_inputs))
    _check_request(model, output, formats, representative_data, check_inputs, latency_runs, threads)
    log = log or (lambda line: None)
    if has_pruning_wrappers(model):
        model = strip(model)
    layers = noisy_layers(model)
    # A folder of our own beside ``output`` (never a fixed name such as output.partial,
    # which may be the user's), renamed to ``output`` once everything is written.
    with results.atomic_dir(output) as partial:
        with _noise_switch(layers, noisy):
            report = _write(model, partial, formats, noisy, len(layers), representative_data,
                            check_inputs, latency_runs, threads, log)
        results.write_json(os.path.join(partial, REPORT_FILE), report)
    log(f"export: wrote {', '.join(report['formats'])} to {output}")
    return report


def _requested(formats, sparse_tflite):
    names = (formats,) if isinstance(formats, str) else tuple(formats)
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise ConfigError(f"unknown export format(s) {unknown or 'none given'}; choose from {', '.join(FORMATS)}")
    names = tuple(dict.fromkeys(names))
    if sparse_tflite and "tflite" in names:
        index = names.index("tflite") + 1
        names = names[:index] + ("tflite_sparse",) + names[index:]
    return names


def _noise_on(inference_noise, has_noise_layers, formats):
    if inference_noise not in NOISE_CHOICES:
        raise ConfigError(f"inference_noise must be one of {NOISE_CHOICES}, got {inference_noise!r}")
    noisy = inference_noise == "on" and has_noise_layers
    if noisy and formats != ("saved_model",):
        raise ConfigError("TFLite cannot hold the CNI/PNI random noise; export with inference_noise='off' "
                          "or choose formats=('saved_model',)")
    return noisy


def _check_request(model, output, formats, representative_data, check_inputs, latency_runs, threads):
    if os.path.exists(output) and (not os.path.isdir(output) or os.listdir(output)):
        raise ConfigError(f"export output {output} already exists and is not empty; choose a new folder")
    if not (isinstance(latency_runs, int) and latency_runs >= 0):
        raise ConfigError(f"latency_runs must be an integer >= 0, got {latency_runs!r}")
    if not (isinstance(threads, int) and threads >= 1):
        raise ConfigError(f"threads must be an integer >= 1, got {threads!r}")
    if "tflite_int8" in formats and representative_data is None:
        raise ConfigError("tflite_int8 needs representative_data: 100-200 [0, 1] images of the model's dataset")
    shape = tuple(model.input_shape[1:])
    for name, images in (("representative_data", representative_data), ("check_inputs", check_inputs)):
        if images is None:
            continue
        if images.ndim != len(shape) + 1 or tuple(images.shape[1:]) != shape or not len(images):
            raise ConfigError(f"{name} has shape {images.shape}; the model takes images of shape (N, {shape})")
        if images.min() < 0 or images.max() > 1:
            raise ConfigError(f"{name} must be images in [0, 1], got values in [{images.min()}, {images.max()}]")


@contextlib.contextmanager
def _noise_switch(layers, on):
    # The export sets the switch (on: the SavedModel serves noise; off: the check reference is
    # the noise-free model) and gives the caller's model back as it was.
    before = [layer.inference_noise for layer in layers]
    try:
        for layer in layers:
            layer.inference_noise = on
        yield
    finally:
        for layer, value in zip(layers, before):
            layer.inference_noise = value


def _write(model, folder, formats, noisy, noise_layers, representative_data, check_inputs, latency_runs,
           threads, log):
    exported = model if noisy else without_noise(model)
    signatures = serving_signatures(exported, seeded=noisy)
    flops = structure_summary(model)["flops"]
    reference = None if check_inputs is None else _source_logits(model, signatures, check_inputs, noisy)
    report = {
        "source": {**artifacts.kernel_counts(artifacts.model_kernels(model)), "flops": flops,
                   "inference_noise": "on" if noisy else "off", "noise_layers": noise_layers},
        "formats": {},
        "input_shape": [None, *model.input_shape[1:]],
        "check_examples": 0 if check_inputs is None else len(check_inputs),
        "checks": ("skipped: no check_inputs" if check_inputs is None else
                   "float formats: max |Δlogit| <= tolerance = atol + rtol * max|source logit|; int8: reported"),
        "gzip": "gzip -9 of each file; of a deterministic tar for the saved_model directory",
    }
    for name in formats:
        log(f"export: {name}")
        if name == "saved_model":
            entry, logits = _saved_model(exported, folder, signatures, check_inputs, noisy)
        else:
            entry, logits = _tflite(exported, folder, name, signatures, representative_data, check_inputs,
                                    latency_runs, threads)
        if "path" in entry:  # produced (only the sparse try may fail)
            entry.update(flops=flops, **_agreement(name, reference, logits))
        report["formats"][name] = entry
    return report


def _source_logits(model, signatures, images, noisy):
    if noisy:  # the live seeded signature: the noise the artifact must reproduce
        seed = tf.constant(CHECK_SEED, tf.int64)
        return _batched(lambda x: signatures["serving_seeded"](x, seed)["logits"], images)
    return _batched(lambda x: model(x, training=False), images)  # eager: what the user's model computes


def _batched(function, images):
    return np.concatenate([np.asarray(function(tf.constant(images[start:start + _BATCH], tf.float32)))
                           for start in range(0, len(images), _BATCH)])


def _saved_model(model, folder, signatures, check_inputs, noisy):
    path = os.path.join(folder, SAVED_MODEL_DIR)
    write_saved_model(model, path, signatures)
    entry = _measured(path, SAVED_MODEL_DIR, artifacts.saved_model_kernels(path))
    entry["signatures"] = sorted(signatures)
    entry["latency_ms"] = None
    if check_inputs is None:
        return entry, None
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures["serving_seeded" if noisy else "serving_default"]
    seed = {"seed": tf.constant(CHECK_SEED, tf.int64)} if noisy else {}
    return entry, _batched(lambda x: signature(images=x, **seed)["logits"], check_inputs)


def _tflite(model, folder, name, signatures, representative_data, check_inputs, latency_runs, threads):
    function = signatures["serving_default"].get_concrete_function()
    try:
        flatbuffer = tflite.convert(function, model, name, representative_data)
    except Exception as error:  # the converter raises ConverterError, ValueError, RuntimeError, ...
        errors.raise_if_stopped(error)  # a SIGTERM inside the converter arrives as SystemError
        if name != "tflite_sparse":  # only the sparse encoding is a try
            raise
        lines = str(error).strip().splitlines() or [""]
        return {"error": f"{type(error).__name__}: {lines[0]}"}, None
    file = tflite.FILES[name]
    path = os.path.join(folder, file)
    with open(path, "wb") as handle:
        handle.write(flatbuffer)
    entry = _measured(path, file, artifacts.tflite_kernels(path))
    if name == "tflite_sparse":
        entry["sparse_tensors"] = artifacts.tflite_sparse_tensors(path)
    entry["latency_ms"] = tflite.latency_ms(path, latency_runs, threads) if latency_runs else None
    return entry, None if check_inputs is None else tflite.predict(path, check_inputs, threads)


def _measured(path, relative, kernels):
    return {"path": relative, "bytes": artifacts.disk_bytes(path), "gzip_bytes": artifacts.gzip_bytes(path),
            **artifacts.kernel_counts(kernels)}


def _agreement(name, reference, logits):
    if reference is None:
        return {"max_abs_logit_diff": None, "tolerance": None, "top1_agreement": None}
    tolerance = None
    if name in TOLERANCES:
        atol, rtol = TOLERANCES[name]
        tolerance = atol + rtol * float(np.max(np.abs(reference)))
    diff = float(np.max(np.abs(logits - reference)))
    if tolerance is not None and not diff <= tolerance:
        raise RuntimeError(f"{name}: the artifact's logits differ from the source model's by {diff:.3g} "
                           f"(tolerance {tolerance:.3g}); nothing was published")
    # The predicted class as every evaluation reads it: argmax, or logit > 0 for a 1-logit binary
    # model (an argmax over its one column is always 0, an agreement of 1.0 whatever the artifact).
    agreement = float(np.mean(labels_from_logits(tf.constant(logits)).numpy()
                              == labels_from_logits(tf.constant(reference)).numpy()))
    return {"max_abs_logit_diff": diff, "tolerance": tolerance, "top1_agreement": agreement}


def format_table(report):
    """A plain-text table of an export report: one row per format."""
    header = (f"{'format':<14}{'bytes':>11}{'gzip':>11}{'params':>10}{'non-zero':>10}{'sparsity':>9}"
              f"{'max|Δlogit|':>13}{'top-1':>8}{'ms':>9}")
    rows = [header]
    for name, entry in report["formats"].items():
        if "path" not in entry:
            rows.append(f"{name:<14}  not produced: {entry['error']}")
            continue
        diff, top1, latency = entry["max_abs_logit_diff"], entry["top1_agreement"], entry["latency_ms"]
        rows.append(
            f"{name:<14}{entry['bytes']:>11}{entry['gzip_bytes']:>11}{entry['params']:>10}"
            f"{entry['nonzero_params']:>10}{entry['weight_sparsity']:>9.4f}"
            f"{'-' if diff is None else f'{diff:.2e}':>13}{'-' if top1 is None else f'{top1:.4f}':>8}"
            f"{'-' if latency is None else format(latency['median'], '.3f'):>9}")
    return "\n".join(rows)
