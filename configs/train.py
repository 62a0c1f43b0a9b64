"""Default config of scripts/train.py: one model, clean training, clean accuracy, SavedModel.

The common choices are flags of the script (--model, --dataset, --data_dir, --num_train,
--epochs); everything else is set here or by --config.* overrides. The variant picks the
training policy: ``lenet`` (default; Guo's Caffe policy) or ``cifar``.
"""

import ml_collections

from configs import common


def get_config(arg=None):
    variant = common.parse_variant(arg, ("lenet", "cifar"))
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.xla = "auto"
    config.verbose = 2
    config.data = common.data("mnist")
    config.model = common.model("lenet300_100")
    config.train = common.lenet_training(50_000) if variant == "lenet" else common.cifar_training()
    config.eval = common.evaluation(num_examples=1000, fgs_eps=0.1)
    return config
