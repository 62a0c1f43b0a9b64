"""Evaluates a saved model under a suite of attacks and writes one flat JSON record.

Usage:
  python scripts/evaluate.py --model=runs/lenet/model.keras --dataset=mnist \
      --data_dir=../shared/data/mnist.npz --num_examples=1000 --attacks=fgsm,pgd,deepfool,cw \
      --eps=0.1 --output=results.json

--model is a Keras 2/3 .h5/.keras file, a SavedModel directory (a Keras one, or a plain TF one whose
--signature maps [0, 1] images to logits) or a .tflite file (black-box attacks square/zoo, or
gradient attacks transferred from --source_model). Every default below, and each attack's
settings, comes from configs/evaluate.py (--config=configs/evaluate.py:cifar for Wang et al.'s
CIFAR attacks); a flag given overrides its key there, as --config.KEY=VALUE does.
--attacks=transfer --source_model=PATH crafts config.attacks.transfer.attack (PGD) on PATH and scores
it on --model (RSR Table 3). --inference_noise=on|off switches an RSR model's CNI/PNI noise (Table 5;
"on" attacks with EOT); a model without noise layers is refused.
--output is checked before any attack runs; an existing file is replaced only with --overwrite.
--config.distribute=mirrored|multi_worker shards the attacks' batches over replicas / workers
(docs/SCALE.md), e.g. python scripts/launch_local.py --num_workers=2 -- scripts/evaluate.py
--config.distribute=multi_worker --model=... --output=results.json (the chief writes it).
Exit codes: 0 ok, 1 failure, 2 bad usage (unknown attack, eps < 0, bad model, data or output,
transfer without --source_model, --inference_noise on a model without noise layers).
"""

import _bootstrap  # noqa: F401  (sys.path for configs/, quiet TF logs)
from absl import flags

from configs import evaluate as evaluate_config
from tfsparse import cli

# Every flag's default is the same-named key of configs/evaluate.py (--attacks: attack_names).
_D = evaluate_config.get_config()
_CONFIG = cli.define_config_file(
    "config", f"{_bootstrap.REPO_ROOT}/configs/evaluate.py", "Defaults file[:variant]: the flags' and the attacks'.",
    example="num_examples=500",
)
_MODEL = flags.DEFINE_string("model", None, "Keras .h5/.keras file or SavedModel dir.", required=True)
_DATASET = flags.DEFINE_string("dataset", _D.dataset, "Dataset name (tfsparse.data.DATASETS).")
_DATA_DIR = flags.DEFINE_string("data_dir", _D.data_dir, "Dataset file/dir; default: embedded MNIST sample or TFDS.")
_CLASSES = flags.DEFINE_list("classes", _D.classes, "Class subset, relabelled 0..k-1 in this order (e.g. 1,7).")
_NUM = flags.DEFINE_integer("num_examples", _D.num_examples, "First test images evaluated (0 = all).", lower_bound=0)
_ATTACKS = flags.DEFINE_list("attacks", list(_D.attack_names), "Attacks: fgsm,rfgsm,pgd,eot_pgd,apgd,apgd_t,fab_t,"
                             "square,autoattack,deepfool,cw,zoo,transfer (needs --source_model).")
_EPS = cli.define_number("eps", _D.eps, "Budget of the fixed-eps attacks, pixel units (>= 0), e.g. 0.1 or 8/255.")
_SUBSET = flags.DEFINE_enum("subset", _D.subset, ["first", "random"], "first N test images, or a seeded random N.")
_OUTPUTS = flags.DEFINE_enum("model_outputs", _D.model_outputs, ["logits", "probabilities"],
                             "What the model returns; probabilities are attacked as log-probabilities.")
_SIGNATURE = flags.DEFINE_string("signature", _D.signature, "Signature of a non-Keras SavedModel.")
_SOURCE = flags.DEFINE_string("source_model", _D.source_model, "Differentiable model the transfer attack (and, for "
                              "a TFLite model, every gradient attack) is crafted on.")
_NOISE = flags.DEFINE_enum("inference_noise", _D.inference_noise, ["on", "off"], "Switch the CNI/PNI noise of the "
                           "model on (EOT attacks) or off; default: as saved.")
_OUTPUT = flags.DEFINE_string("output", _D.output, "JSON file to write (atomically).")
_OVERWRITE = flags.DEFINE_bool("overwrite", _D.overwrite, "Allow --output to replace an existing file.")
_KEYS = ((_DATASET, "dataset"), (_DATA_DIR, "data_dir"), (_CLASSES, "classes"), (_NUM, "num_examples"),
         (_ATTACKS, "attack_names"), (_EPS, "eps"), (_SUBSET, "subset"), (_OUTPUTS, "model_outputs"),
         (_SIGNATURE, "signature"), (_SOURCE, "source_model"), (_NOISE, "inference_noise"), (_OUTPUT, "output"),
         (_OVERWRITE, "overwrite"))


def main(argv):
    cli.apply_flags(_CONFIG.value, _KEYS)
    config = cli.resolved_config(_CONFIG)
    from tfsparse.pipelines.evaluate import evaluate_model

    evaluate_model(
        config, _MODEL.value, attack_names=list(config.attack_names), eps=config.eps, dataset=config.dataset,
        data_dir=config.data_dir, classes=config.classes, num_examples=config.num_examples, subset=config.subset,
        model_outputs=config.model_outputs, signature=config.signature, source_model=config.source_model,
        inference_noise=config.inference_noise, output=config.output, overwrite=config.overwrite,
        distribute=config.distribute,
    )


if __name__ == "__main__":
    cli.run(main)
