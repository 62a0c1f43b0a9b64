"""Guo et al. 2018's CLEVER table (supplement Table 3; Weng et al. 2018): CLEVER of dense and pruned LeNets.

For each seed of a ``guo_progressive_pruning`` sweep and each round in ``clever.rounds`` (0 =
the dense reference), the untargeted l2 and l∞ CLEVER scores (``tfsparse.metrics.clever``)
averaged over the first ``clever.num_images`` test images, beside that round's r2 / r∞ from the
sweep. Sample budget per image and class: ``clever.batches`` × ``clever.samples`` gradient
norms (Weng et al.'s N_b × N_s = 500 × 1,024 in ``paper``; 20 × 64 in ``quick``). Radii (which
also cap the scores): 5.0 (l2) and 0.3 (l∞), chosen above the r2 / r∞ budgets measured here.

``clever.sweep_dir``: a finished sweep's run directory, or '' to run this config's own sweep
(the sections of ``configs/guo_mnist.py``, same variant) first, in ``<workdir>/sweep``.

Variants (``--config=configs/guo_clever.py:VARIANT``):
  quick  a 4-round LeNet-300-100 sweep on the embedded sample (3 seeds), CLEVER of rounds 0, 2, 4
         on 10 images with 20 × 64 samples; ~6 min on 2 CPU cores.
  full   rounds 0, 4, 8, 12, 16 of a full-MNIST sweep, 100 images, 100 × 256 samples; pass the
         sweep with --config.clever.sweep_dir (LeNet-300-100: estimated ~2 h per seed on 2 CPU
         cores, ~25 min with --config.clever.num_images=20).
  paper  as full with Weng et al.'s 500 × 1,024 samples (512,000 gradients per image and class:
         a GPU job).

Example:
  python scripts/experiment.py --config=configs/guo_clever.py:full \
      --config.clever.sweep_dir=runs/guo_lenet300 --workdir=runs/guo_clever_lenet300
"""

import ml_collections

from configs import guo_mnist


def get_config(arg=None):
    config = guo_mnist.get_config(arg)
    config.experiment = "guo_clever"
    config.eval.measures = "r_inf,r2"  # the own sweep measures only what the table shows beside CLEVER
    config.clever = ml_collections.ConfigDict(
        {"sweep_dir": "", "rounds": (0, 4, 8, 12, 16), "num_images": 100, "batches": 100, "samples": 256,
         "l2_radius": 5.0, "linf_radius": 0.3}
    )
    if config.variant == "quick":
        config.seeds = (0, 1, 2)
        config.prune.rounds = 4
        config.clever.update({"rounds": (0, 2, 4), "num_images": 10, "batches": 20, "samples": 64})
    elif config.variant == "paper":
        config.clever.update({"batches": 500, "samples": 1024})
    return config
