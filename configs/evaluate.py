"""Every default of ``scripts/evaluate.py``: its flags' and the attacks' (the only place they live).

The run-level keys are the defaults of the script's flags of the same name (``--attacks``:
``attack_names``); a flag given on the command line overrides its key, as ``--config.KEY=VALUE``
does, and ``--print_config`` shows the result. ``attacks`` holds each attack's settings:
``get_config("mnist")`` (default) follows Madry et al.'s MNIST PGD (40 steps of 0.01, random
start) and Guo et al.'s DeepFool (overshoot 0.02, 50 iterations, box on); ``get_config("cifar")``
follows Wang et al. (PGD step 2/255, 100 steps). ``--eps`` on the command line sets the budget of
every fixed-ε attack. Example (about a minute on 2 CPU cores for 1,000 MNIST images without cw):

  python scripts/evaluate.py --model=runs/lenet/model.keras --dataset=mnist \
      --attacks=fgsm,pgd,deepfool --eps=0.1 --output=results.json
"""

import ml_collections

from configs import common


def get_config(arg=None):
    variant = common.parse_variant(arg, ("mnist", "cifar"))
    pgd_step = 0.01 if variant == "mnist" else 2 / 255
    pgd_steps = 40 if variant == "mnist" else 100
    return ml_collections.ConfigDict(
        {
            # The run (one flag each; None: not set). dataset, data_dir (None: the embedded MNIST
            # sample or TFDS), classes (None: all; else a subset relabelled 0..k-1 in its order)
            # and num_examples (0: all) pick the test images: the first ones, or a seeded random
            # set with subset "random".
            "dataset": "mnist",
            "data_dir": None,
            "classes": None,
            "num_examples": 1000,
            "subset": "first",
            "attack_names": ("fgsm", "pgd", "deepfool"),
            "eps": 0.1,  # budget of every fixed-eps attack, pixel units
            "model_outputs": "logits",  # or "probabilities", attacked as log-probabilities
            "signature": "serving_default",  # of a non-Keras SavedModel
            "source_model": None,  # the model --attacks=transfer (and a TFLite model's gradient attacks) craft on
            "inference_noise": None,  # "on" / "off" switches CNI/PNI noise; None: as saved
            "output": None,  # JSON report file
            "overwrite": False,  # may output replace an existing file
            "batch_size": 500,
            "seed": 0,
            # A model random at inference is attacked with EOT over this many draws per gradient
            # (AutoAttack's rand version uses 20), and PGD at eps = 1 must leave accuracy 0.
            "eot_samples": 20,
            "check_unbounded": True,
            # tf.distribute strategy the attacks' batches are sharded over (none, mirrored,
            # multi_worker: run under scripts/launch_local.py or a TF_CONFIG cluster; docs/SCALE.md).
            "distribute": "none",
            "attacks": {
                "fgsm": {},
                "rfgsm": {},
                "pgd": {"step_size": pgd_step, "steps": pgd_steps, "random_start": True},
                "eot_pgd": {"step_size": pgd_step, "steps": pgd_steps, "samples": 10},
                "deepfool": {"overshoot": 0.02, "max_iter": 50, "top_k": 10, "box": True},
                "cw_l2": {"binary_search_steps": 9, "steps": 1000, "learning_rate": 0.01,
                          "initial_const": 0.01, "confidence": 0.0},
                # Chen et al. 2017 ZOO-ADAM. c: binary_search_steps rounds from initial_const (Chen's
                # search, e.g. 9 from 0.01 with max_queries 9 * iterations * 257 + 2); at 20,000
                # queries one round at c = 10 flips the most (measured, tfsparse.attacks.ZOO).
                "zoo": {"coords": 128, "max_queries": 20000, "learning_rate": 0.01, "initial_const": 10.0,
                        "binary_search_steps": 1},
                # --attacks=transfer: this attack (with its defaults above) crafted on --source_model.
                "transfer": {"attack": "pgd"},
                # Croce & Hein 2020 (AutoAttack's budgets): 100 iterations, 9 target classes.
                "apgd": {"loss": "ce", "steps": 100, "restarts": 1},
                "apgd_t": {"steps": 100, "n_target_classes": 9},
                "fab_t": {"steps": 100, "n_target_classes": 9},
                "autoattack": {"version": "standard", "steps": 100, "n_target_classes": 9,
                               "square_queries": 5000, "eot_samples": 20},
                # AutoAttack's standard Square (Andriushchenko et al. 2020): p_init 0.8, 5,000 queries.
                "square": {"max_queries": 5000, "p_init": 0.8, "restarts": 1},
            },
        }
    )
