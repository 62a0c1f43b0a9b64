"""Writes results tables (markdown) from run folders, so documents are generated, never hand-copied.

Usage:
  python scripts/report.py runs/export_dense runs/export_g50 runs/export_g90 --output=artifacts.md
  python scripts/report.py runs/eval_clean.json runs/eval_pgd.json --output=robust.md

Export folders of scripts/export.py --robustness (export.json, robustness.json) give the
robustness-of-the-artifact table; evaluate.py --output files give a robustness table (one row
per file; the training run's results.json beside the evaluated saved_model/ adds training,
weight sparsity, steps and time). Without --output the markdown is printed. Exit codes: 0 ok,
1 failure, 2 bad usage (a path of no known kind, an existing --output).
"""

import _bootstrap  # noqa: F401
from absl import flags

from tfsparse import cli

_OUTPUT = flags.DEFINE_string("output", None, "Markdown file to write (must not exist); default: print.")


def main(argv):
    from tfsparse.pipelines.report import write_report

    write_report(argv[1:], _OUTPUT.value)


if __name__ == "__main__":
    cli.run(main, positional=True)
