"""tfsparse: sparse and adversarially robust neural networks on TensorFlow/Keras.

Importing tfsparse selects Keras 2 (``tf_keras``) before TensorFlow loads, because
tensorflow-model-optimization does not support Keras 3 (SPEC §1). The subpackages:

* ``tfsparse.data``: embedded MNIST sample, local/TFDS readers, tf.data pipelines.
* ``tfsparse.models``: the model zoo (``models.get(name)``).
* ``tfsparse.layers``: input normalisation, CNI/PNI noise injection, activation L1.
* ``tfsparse.sparsity``: tfmot pruning (progressive, GUP/LUP, FP/NS, γ, lottery, IWI), stats.
* ``tfsparse.attacks``: FGS, rFGS, PGD, EOT-PGD, APGD, FAB-T, Square, AutoAttack, DeepFool, C&W L2, ZOO,
  transfer.
* ``tfsparse.metrics``: r∞, r2, PGD accuracy, distortion bound, CLEVER, theory, diagnostics.
* ``tfsparse.training``: Keras machinery: clean and PGD adversarial training, RSR loss, callbacks.
* ``tfsparse.certification``: IBP / CROWN / CROWN-IBP bounds, certified accuracy (``tfsparse.certify``).
* ``tfsparse.evaluation``: the one evaluator (per-sample worst case over an attack suite).
* ``tfsparse.pipelines``: one module per kind of run (train, guo, wang, prune, tune, evaluate),
  the layer ``scripts/`` call; imported on demand (``import tfsparse.pipelines``).
"""

from tfsparse._keras_guard import select_legacy_keras

select_legacy_keras()

from tfsparse._version import __version__  # noqa: E402,F401

# Curated re-exports, grouped like the subpackages above. They load on first access
# (PEP 562), so ``import tfsparse.cli`` or ``tfsparse.errors`` does not pay for TensorFlow
# (a script's ``--help`` answers at once); ``tfsparse.attacks`` etc. import as usual.
_SUBPACKAGES = ("attacks", "certification", "data", "errors", "evaluation", "export", "layers", "metrics", "model_io", "models",
                "sanity", "sparsity", "training")
_EXPORTS = {
    "AutoAttack": "tfsparse.attacks", "EOTPGD": "tfsparse.attacks", "FGSM": "tfsparse.attacks",
    "PGD": "tfsparse.attacks", "RFGSM": "tfsparse.attacks", "ZOO": "tfsparse.attacks",
    "CarliniWagnerL2": "tfsparse.attacks", "DeepFool": "tfsparse.attacks", "TransferAttack": "tfsparse.attacks",
    "load_data": ("tfsparse.data", "load"),
    "evaluate": "tfsparse.evaluation",
    "certify": "tfsparse.certification",
    "save_saved_model": "tfsparse.export",
    "NoisyConv2D": "tfsparse.layers", "NoisyDense": "tfsparse.layers",
    "clever": "tfsparse.metrics", "distortion_lower_bound": "tfsparse.metrics", "pgd_accuracy": "tfsparse.metrics",
    "r2": "tfsparse.metrics", "r_inf": "tfsparse.metrics",
    "prune": "tfsparse.sparsity", "strip": "tfsparse.sparsity", "weight_sparsity": "tfsparse.sparsity",
    "AdversarialModel": "tfsparse.training", "RobustnessEval": "tfsparse.training",
}
__all__ = ["__version__", *_SUBPACKAGES, *_EXPORTS]


def __getattr__(name):
    import importlib

    if name in _SUBPACKAGES:
        return importlib.import_module(f"tfsparse.{name}")
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name] if isinstance(_EXPORTS[name], tuple) else (_EXPORTS[name], name)
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tfsparse' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
