r"""Runs a script as a cluster of localhost processes: tf.distribute workers, or keras-tuner's chief/workers.

Usage:
  python scripts/launch_local.py --num_workers=2 -- scripts/train.py --training=pgd \
      --config.distribute=multi_worker --workdir=runs/pgd_2w
  python scripts/launch_local.py --keras_tuner --num_workers=2 -- scripts/tune.py \
      --config=configs/tune_rsr.py:quick --workdir=runs/tune_2w

Everything after '--' is the command, the same for every process (a .py file runs with this
Python). Default mode: --num_workers processes, each with TF_CONFIG naming the cluster (free
localhost ports) and its index; worker 0 is the chief and alone writes the run directory.
--keras_tuner: one chief (KERASTUNER_TUNER_ID=chief, the oracle, which writes the run
directory) plus --num_workers trial workers (tuner0, tuner1, ...), all given
KERASTUNER_ORACLE_IP/PORT. Output lines are prefixed with the process name; at the end one
line per process gives its exit. If one process fails, the time runs out (--timeout) or the
launcher is interrupted, the others get SIGTERM, then SIGKILL after --grace seconds.
Exit codes: 0 all processes ok, 1 one failed or was stopped, 2 bad usage (of the launcher, or
reported by the command itself), 130/143 interrupted.
"""

import _bootstrap  # noqa: F401
from absl import flags

from tfsparse import cli
from tfsparse import launch
from tfsparse.errors import UsageError

_NUM_WORKERS = flags.DEFINE_integer("num_workers", 2, "Worker processes (keras-tuner: trial workers, plus the chief).")
_KERAS_TUNER = flags.DEFINE_bool("keras_tuner", False, "keras-tuner's distributed mode: a chief oracle and workers.")
_TIMEOUT = flags.DEFINE_float("timeout", 3600.0, "Seconds for the whole cluster; then every process is stopped.")
_GRACE = flags.DEFINE_float("grace", 10.0, "Seconds between SIGTERM and SIGKILL when stopping processes.")


def main(argv):
    command = launch.command_line(argv[1:])  # absl stops at '--' and hands the rest over
    helped = launch.show_help(command)  # "-- scripts/train.py --help": train.py's help, once
    if helped is not None:
        return helped
    if _NUM_WORKERS.value < 1 or _TIMEOUT.value <= 0:
        raise UsageError(f"--num_workers must be >= 1 and --timeout > 0, got {_NUM_WORKERS.value}, {_TIMEOUT.value}")
    tasks = launch.tuner_tasks(_NUM_WORKERS.value) if _KERAS_TUNER.value else launch.worker_tasks(_NUM_WORKERS.value)
    outcomes = launch.launch(command, tasks, timeout=_TIMEOUT.value, grace=_GRACE.value)
    for outcome in outcomes:
        print(outcome.describe())
    return launch.exit_code(outcomes)


if __name__ == "__main__":
    cli.run(main, positional=True, tensorflow=False)
