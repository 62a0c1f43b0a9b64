"""Evaluates a saved model under a suite of attacks and writes one flat JSON record.

Usage:
  python scripts/evaluate.py --model=runs/lenet/model.keras --dataset=mnist \
      --data_dir=../shared/data/mnist.npz --num_examples=1000 --attacks=fgsm,pgd,deepfool,cw \
      --eps=0.1 --output=results.json

--model is a Keras .h5/.keras file or a SavedModel directory (a Keras one, or a plain TF one whose
serving_default signature maps [0, 1] images to logits). Attack defaults: configs/evaluate.py.
Exit codes: 0 ok, 1 failure, 2 bad usage (unknown attack, eps < 0, bad model or data).
"""

import _bootstrap  # noqa: F401  (sys.path for configs/, quiet TF logs)
from absl import flags

import tfsparse  # noqa: F401  (selects tf_keras before TensorFlow loads)
from tfsparse import cli
from tfsparse import config as config_lib
from tfsparse import model_io

_CONFIG = cli.define_config_file(
    "config", f"{_bootstrap.REPO_ROOT}/configs/evaluate.py", "Attack defaults file[:variant]."
)
_MODEL = flags.DEFINE_string("model", None, "Keras .h5/.keras file or SavedModel dir.", required=True)
_DATASET = flags.DEFINE_string("dataset", "mnist", "Dataset name (tfsparse.data.DATASETS).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Dataset file/dir; default: embedded MNIST sample or TFDS.")
_CLASSES = flags.DEFINE_list("classes", None, "Class subset, relabelled 0..k-1 in this order (e.g. 1,7).")
_NUM = flags.DEFINE_integer("num_examples", 1000, "Test images evaluated (0 = all).", lower_bound=0)
_ATTACKS = flags.DEFINE_list("attacks", "fgsm,pgd,deepfool", "Attacks: fgsm,rfgsm,pgd,eot_pgd,deepfool,cw,zoo.")
_EPS = flags.DEFINE_float("eps", 0.1, "Budget of the fixed-eps attacks, pixel units (>= 0).")
_OUTPUT = flags.DEFINE_string("output", None, "JSON file to write (atomically).")


def main(argv):
    if len(argv) > 1:
        raise config_lib.ConfigError(f"unexpected arguments {argv[1:]}; pass options as --flags")
    from tfsparse import evaluation

    attacks = evaluation.build_attacks(_ATTACKS.value, _EPS.value, _CONFIG.value)
    model = model_io.load_model(_MODEL.value)
    report = evaluation.evaluate_dataset(
        model, attacks, dataset=_DATASET.value, data_dir=_DATA_DIR.value, classes=_CLASSES.value,
        num_examples=_NUM.value, batch_size=_CONFIG.value.batch_size, seed=_CONFIG.value.seed,
    )
    print(evaluation.format_table(report))
    if _OUTPUT.value:
        from tfsparse import results

        results.write_json(_OUTPUT.value, report)
        print(f"results: {_OUTPUT.value}")


if __name__ == "__main__":
    cli.run(main)
