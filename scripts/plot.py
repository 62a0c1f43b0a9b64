"""Redraws the figures of experiment run directories from their files (no training, no attack).

Usage:
  python scripts/plot.py runs/wang_lottery_q runs/wang_iwi_q
  python scripts/plot.py runs/wang_mnist_full_s0

Each run directory's figures are those its experiment declares (tfsparse.pipelines.engine:
``figures``), drawn from its results.json and config.json into the run directory, as a
complete run draws them; the paths are printed. Works on an unfinished run too (the records
so far). Exit codes: 0 ok, 1 failure, 2 bad usage (not a run directory, no record yet, an
experiment without figures).
"""

import _bootstrap  # noqa: F401

from tfsparse import cli
from tfsparse.errors import UsageError


def main(argv):
    if not argv[1:]:
        raise UsageError("name at least one run directory, e.g. python scripts/plot.py runs/wang_lottery_q")
    from tfsparse import pipelines
    from tfsparse.pipelines import engine

    for run_dir in argv[1:]:
        _, state, _ = engine.read_run(run_dir, what="plot")
        for path in engine.redraw_figures(pipelines.experiment(state.get("pipeline")), run_dir):
            print(path)


if __name__ == "__main__":
    cli.run(main, positional=True)
