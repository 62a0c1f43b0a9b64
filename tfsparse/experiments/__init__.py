"""Paper experiments as library pipelines; the scripts in ``scripts/`` are thin mains over them."""

from tfsparse.experiments.guo import run_sweep
