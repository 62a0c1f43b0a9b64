"""Exports a trained Keras model to SavedModel and TFLite, checks each artifact, reports size and latency.

Usage:
  python scripts/export.py --model=runs/pgd1/saved_model --output=runs/pgd1/export \
      --formats=saved_model,tflite,tflite_fp16,tflite_int8 --representative_data=mnist \
      --data_dir=../shared/data [--inference_noise=off|on] [--robustness]

Formats: saved_model, tflite (float32), tflite_fp16 (float16 weights), tflite_int8 (full
integer, calibrated on the model's own training images; float32 input and output). Every
artifact maps [0, 1] images to logits and is checked against the source model on held-out
test images. Pruning wrappers are stripped (zeros kept); CNI/PNI noise layers export as plain
layers with --inference_noise=off, or keep their noise in the SavedModel with =on (TFLite
refused). --output receives the artifacts and export.json (bytes, gzip bytes, parameters,
non-zero parameters, sparsity counted in each artifact, FLOPs, agreement, TFLite latency at
batch 1); --robustness adds robustness.json (float model vs each artifact under PGD and
Square). Exit codes: 0 ok, 1 failure, 2 bad usage (unknown format, existing output, ...).
"""

import _bootstrap  # noqa: F401  (sys.path for configs/, quiet TF logs)
from absl import flags

from tfsparse import cli

_CONFIG = cli.define_config_file("config", f"{_bootstrap.REPO_ROOT}/configs/export.py", "Export config file[:variant].",
                                 example="robustness.num_examples=500")
_MODEL = flags.DEFINE_string("model", None, "Trained Keras model: .h5/.keras file or SavedModel directory.",
                             required=True)
_OUTPUT = flags.DEFINE_string("output", None, "Output directory to create (must not exist or be empty).",
                              required=True)
_FORMATS = flags.DEFINE_string("formats", None, "Comma-separated formats (config.export.formats): "
                                                "saved_model,tflite,tflite_fp16,tflite_int8.")
_NOISE = flags.DEFINE_enum("inference_noise", None, ["off", "on"],
                           "CNI/PNI noise in the artifact (config.export.inference_noise).")
_DATA = flags.DEFINE_string("representative_data", None, "The model's dataset (config.data.name): int8 "
                                                         "calibration images and held-out check images.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Data file or directory (config.data.data_dir).")
_ROBUSTNESS = flags.DEFINE_bool("robustness", None, "Also attack every artifact (config.robustness.enabled).")


def main(argv):
    config = _CONFIG.value
    config = cli.resolved_config(_CONFIG, [
        (_FORMATS.value, config.export, "formats"), (_NOISE.value, config.export, "inference_noise"),
        (_DATA.value, config.data, "name"), (_DATA_DIR.value, config.data, "data_dir"),
        (_ROBUSTNESS.value, config.robustness, "enabled"),
    ])
    from tfsparse.pipelines.export import export_model

    export_model(config, _MODEL.value, _OUTPUT.value)
    print(f"output directory: {_OUTPUT.value}")


if __name__ == "__main__":
    cli.run(main)
