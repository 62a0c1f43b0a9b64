"""Default config of scripts/export.py: a trained model to SavedModel / TFLite, checked and measured.

The common choices are flags (--model, --output, --formats, --inference_noise,
--representative_data, --data_dir, --robustness); the rest is set here or by --config.*
overrides, e.g. ``--config.export.latency_runs=200`` or ``--config.robustness.num_examples=500``.

Variants (``--config=configs/export.py:VARIANT``):
  mnist   (default) MNIST models: robustness step at ε 0.3 (Madry et al.'s MNIST budget).
  cifar   CIFAR-10 models: ε 8/255, PGD step 2/255 (Wang et al.).
"""

import ml_collections

from configs import common


def get_config(arg=None):
    variant = common.parse_variant(arg, ("mnist", "cifar"))
    mnist = variant == "mnist"
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.xla = "auto"
    # The model's own dataset: the first ``representative_examples`` training images calibrate
    # full-int8 quantisation; the first ``check_examples`` test images (held out) check every
    # artifact against the source model.
    config.data = common.data("mnist" if mnist else "cifar10")
    config.export = ml_collections.ConfigDict({
        "formats": "saved_model,tflite",
        "inference_noise": "off",  # off: CNI/PNI layers become plain Conv2D/Dense (α dropped)
        "representative_examples": 200,
        "check_examples": 500,
        "latency_runs": 100,  # TFLite interpreter, batch 1, median of this many invocations
        "threads": 1,
        "sparse_tflite": True,  # also try TFLite's sparse encoding (Optimize.EXPERIMENTAL_SPARSITY)
    })
    # Robustness of the shipped artifacts: on the first ``num_examples`` test images, the float
    # model's clean / white-box PGD / Square accuracy beside each artifact's clean / transfer-PGD
    # (crafted on the float model) / Square accuracy; an artifact outside the float model's
    # ``confidence`` Wilson interval is flagged.
    config.robustness = ml_collections.ConfigDict({
        "enabled": False,
        "num_examples": 1000,
        "eps": 0.3 if mnist else 8 / 255,
        "pgd_steps": 40 if mnist else 10,
        "pgd_step_size": 0.01 if mnist else 2 / 255,
        "square_queries": 1000,
        "square_p_init": 0.8,
        "confidence": 0.95,
        "batch_size": 500,
    })
    return config
