"""Paper experiments as library pipelines; the scripts in ``scripts/`` are thin mains over them."""

from tfsparse.config import ConfigError
from tfsparse.experiments.guo import run_sweep
from tfsparse.experiments.wang import run_oneshot_table

PIPELINES = {"guo_progressive_pruning": run_sweep, "wang_oneshot": run_oneshot_table}


def get(name):
    """The pipeline ``fn(config, workdir) -> run_dir`` registered as ``name``."""
    if name not in PIPELINES:
        raise ConfigError(f"experiment {name!r} is unknown; choose from {sorted(PIPELINES)}")
    return PIPELINES[name]
