"""The experiment engine: every paper table is an :class:`Experiment` declaration, run by :func:`run_experiment`.

A declaration says only what is particular to its table:

* ``check(config)`` — the keys only this table reads (one-line ``ConfigError``, before any work);
* ``units(config)`` — the units of work of one seed, in order (:class:`Unit`: the record's key
  fields and a name for the log); a unit that needs another one (the dense reference of its
  seed, the seed's ticket) asks the seed's :class:`Work` for it, which trains it once, keeps
  it in memory and on disk, and reads it back on resume;
* ``run_unit(work, unit) -> dict`` — trains and measures one unit: the fields of its record;
* ``facts(config, dataset)`` — what ``results.json`` says of the run besides its records;
* ``summarise(records)`` — the per-row summary over seeds (mean ± 95 % CI, paired
  differences), stored as ``summary`` after every unit;
* ``describe(record, config)`` — the unit's progress line;
* ``write_outputs(run_dir)`` — ``results.csv`` / ``results.md`` and the figures, from the run's files;
* ``figures(run_dir) -> [paths]`` — the table's figures (``write_outputs`` draws them with it),
  drawn from the run's files only, so ``scripts/plot.py`` (:func:`redraw_figures`) redraws them
  from any run directory;
* ``report(runs)`` — the markdown of pooled run directories for ``scripts/report.py``.

The engine owns what every table shares: the run directory and its status
(:class:`~tfsparse.pipelines._run.Run`), the done-set and ``--resume`` (a unit whose record is
in ``results.json`` is never redone), the seeds loop, each unit's per-epoch checkpoint folder
(removed once its record is written), rewriting ``results.json`` after every unit, progress
lines, the output files, and pooling several run directories of one table
(:func:`read_runs`, :func:`pool`).
"""

import dataclasses
import json
import os
import shutil
from typing import Any
from typing import Callable
from typing import Optional

from tfsparse import reporting
from tfsparse.errors import ConfigError
from tfsparse.errors import RunDirError
from tfsparse.pipelines._build import load_data
from tfsparse.pipelines._run import CONFIG_FILE
from tfsparse.pipelines._run import RESULTS_FILE
from tfsparse.pipelines._run import Run
from tfsparse.pipelines._run import describe as describe_run_dir


@dataclasses.dataclass(frozen=True)
class Unit:
    """One unit of work of a seed: ``fields`` (the record's key, ``seed`` included), its log name and
    ``file``: the stem of its files under ``checkpoints/seed<S>/`` (default: the name, spaces as ``_``)."""

    name: str
    fields: dict
    file: Optional[str] = None

    @property
    def stem(self):
        return self.file or self.name.replace(" ", "_")

    def done_in(self, records):
        """True when one of ``records`` carries every key field of this unit."""
        return any(all(r.get(k) == v for k, v in self.fields.items()) for r in records)


def _no_check(config):
    return None


def _no_facts(config, dataset):
    return {}


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A table as a declaration (see the module docstring for each part).

    ``units(config, seed) -> [Unit]``; ``run_unit(work, unit) -> record fields``;
    ``records_key``: the results.json field of the records (``rows`` for Wang Tables 1–2, as
    their run directories have always had it); ``work``: the class of the seed's
    :class:`Work` (a subclass adds the table's shared dependencies); ``prepare(config,
    dataset, log)``: the data the units train on, if not the dataset itself (Wang's
    validation split).
    """

    kind: str
    units: Callable[[Any, int], list]
    run_unit: Callable[[Any, Unit], dict]
    describe: Callable[[dict, Any], str]
    write_outputs: Callable[[str], Optional[dict]]
    report: Optional[Callable[[list], str]] = None
    figures: Optional[Callable[[str], list]] = None
    check: Callable[[Any], None] = _no_check
    facts: Callable[[Any, Any], dict] = _no_facts
    summarise: Optional[Callable[[list], list]] = None
    records_key: str = "records"
    work: type = None
    prepare: Optional[Callable] = None

    def __call__(self, config, workdir, *, resume=False, log=print):
        return run_experiment(self, config, workdir, resume=resume, log=log)


class Work:
    """What the units of one seed share: its run, config, data, seed, log and dependencies.

    Files of the seed live under ``checkpoints/seed<S>/`` (:meth:`path`): the weights of its
    trained units (:meth:`save` / :meth:`load`) and, while a unit trains, its per-epoch
    checkpoints (:meth:`training_dir`), so a resumed run reuses every finished dependency and
    continues a unit from its last epoch. :meth:`once` keeps a dependency in memory for the
    seed's later units; :attr:`shared` is one dict for every seed of the run (e.g. RSR
    Table 3's transfer sources, trained once per run).
    """

    def __init__(self, run, config, dataset, data, seed, log, shared=None):
        self.run, self.config, self.dataset, self.data = run, config, dataset, data
        self.seed, self.log = int(seed), log
        self.shared = {} if shared is None else shared
        self._memo = {}

    def path(self, name):
        """A file of this seed: ``checkpoints/seed<S>/<name>``."""
        return self.run.file("checkpoints", f"seed{self.seed}", name)

    def training_dir(self, name):
        """Per-epoch checkpoints of ``name`` while it trains (removed once its record is written)."""
        return self.path(name.replace(" ", "_") + ".training")

    def weights_path(self, name):
        return self.path(f"{name}.weights.h5")

    def has(self, name):
        """True when the weights of ``name`` were saved by this or an earlier (resumed) run."""
        return os.path.isfile(self.weights_path(name))

    def save(self, name, model):
        """Saves ``model``'s weights as ``name`` atomically (a kill leaves the old file or none)."""
        path = self.weights_path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = path[: -len(".weights.h5")] + ".partial.weights.h5"
        model.save_weights(partial)
        os.replace(partial, path)

    def load(self, model, name):
        """Loads the saved weights ``name`` into ``model``; returns it."""
        model.load_weights(self.weights_path(name))
        return model

    def once(self, name, make):
        """``make()`` the first time ``name`` is asked for in this seed, the kept value after."""
        if name not in self._memo:
            self._memo[name] = make()
        return self._memo[name]

    def forget(self, name):
        self._memo.pop(name, None)


def run_experiment(spec, config, workdir, *, resume=False, log=print):
    """Runs (or with ``resume`` continues) the experiment ``spec`` of ``config`` in ``workdir``.

    ``config`` is validated (:func:`tfsparse.pipelines.validate.validate`) and checked by
    ``spec.check`` before the workdir is touched. Writes ``config.json``, ``results.json``
    (status, ``last_completed`` = ``seed S <unit>``, the facts, every record so far and, with
    ``spec.summarise``, the ``summary``; rewritten after each unit), the units' files under
    ``checkpoints/``, and once the run is complete ``spec.write_outputs``'s files (the fields
    it returns are added to ``results.json``).

    Returns:
      The absolute path of the run directory.

    Raises:
      ConfigError: a bad config (before any work).
      RunDirError: a taken workdir, or nothing to resume.
    """
    spec.check(config)
    run = Run(workdir, config, spec.kind, resume=resume).prepare()
    if run.already_complete:
        log(f"run {run.path} is already complete; nothing to resume")
        return run.path
    dataset = load_data(config.data, log=log)
    data = spec.prepare(config, dataset, log) if spec.prepare is not None else dataset
    records = list((run.previous or {}).get(spec.records_key, []))

    def progress():
        fields = {spec.records_key: records}
        if spec.summarise is not None:
            fields["summary"] = spec.summarise(records)
        return fields

    shared = {}
    with run.start(**spec.facts(config, dataset), **progress()):
        for seed in config.seeds:
            work = (spec.work or Work)(run, config, dataset, data, seed, log, shared)
            for unit in spec.units(config, seed):
                if unit.done_in(records):
                    continue
                record = dict(unit.fields)
                record.update(spec.run_unit(work, unit))
                records.append(record)
                run.update(last_completed=f"seed {seed} {unit.name}", **progress())
                shutil.rmtree(work.training_dir(unit.stem), ignore_errors=True)
                log(spec.describe(record, config))
    # Written from the files of the complete run (so results.md says it is complete); fields
    # the outputs compute (e.g. Guo's over-pruning finding) go back into results.json.
    extra = spec.write_outputs(run.path)
    if extra:
        run.update(**extra)
    run.close()  # the run directory stays locked until its outputs are written
    return run.path


def redraw_figures(spec, run_dir):
    """Draws the figures of ``spec`` again from the files of ``run_dir``; returns their paths.

    Raises:
      RunDirError: a run directory of another experiment, or one with no record yet.
      ConfigError: an experiment that declares no figures.
    """
    _, state, _ = read_run(run_dir, kinds=(spec.kind,), what="plot")
    require_records(run_dir, state, spec.records_key)
    if spec.figures is None:
        raise ConfigError(f"plot: {spec.kind} declares no figures; its tables are in {run_dir}/results.md")
    return spec.figures(run_dir)


def read_json(run_dir, name, what="report"):
    """A run directory's ``config.json`` or ``results.json``; RunDirError naming it when unreadable."""
    try:
        with open(os.path.join(run_dir, name), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        raise RunDirError(f"{what}: {run_dir} has no readable {name}; name a run directory") from None


def read_run(run_dir, kinds=None, what="report"):
    """``(run_dir, state, config)`` of a run directory: its results.json and its config.

    Raises:
      RunDirError: unreadable files, or a run of a pipeline not in ``kinds``.
    """
    state = read_json(run_dir, RESULTS_FILE, what)
    config = read_json(run_dir, CONFIG_FILE, what)["config"]
    if kinds is not None and state.get("pipeline") not in kinds:
        raise RunDirError(f"{what}: {run_dir} holds a {state.get('pipeline')!r} run, not {' / '.join(kinds)}")
    return run_dir, state, config


def group_runs(run_dirs, kinds=None, key=None):
    """Run directories of one table, grouped: ``[[(run_dir, state, config), ...], ...]``.

    Runs with the same ``key(state, config)`` (default: pipeline, model, dataset and config
    variant) are one table whose seeds pool; a ``quick`` and a ``full`` run stay two tables.
    """
    key = key or (lambda state, config: (state["pipeline"], config["model"]["name"], config["data"]["name"],
                                         config.get("variant")))
    groups = {}
    for run_dir in run_dirs:
        entry = read_run(run_dir, kinds)
        groups.setdefault(key(entry[1], entry[2]), []).append(entry)
    return list(groups.values())


def pool(runs, records_key="records"):
    """One ``(first_dir, state, config)`` for runs of one table: their records pooled.

    A seed found in two directories is refused (:func:`tfsparse.reporting.pooled_records`:
    it would count twice). The pooled state's ``status`` is ``complete`` or names the runs that
    are not; ``config["seeds"]`` lists every seed.
    """
    records = reporting.pooled_records([(d, s.get(records_key, [])) for d, s, _ in runs])
    first_dir, state, config = runs[0]
    if len(runs) > 1:
        unfinished = [f"{d} {s.get('status')} (last completed: {s.get('last_completed')})"
                      for d, s, _ in runs if s.get("status") != "complete"]
        state = dict(state, status="complete" if not unfinished else "; ".join(unfinished), last_completed=None)
        config = dict(config, seeds=sorted({seed for _, _, c in runs for seed in c["seeds"]}))
    return first_dir, dict(state, **{records_key: records}), config


def status_note(state):
    """`` **Run interrupted**, last completed: …`` for a run that did not complete, else ''."""
    if state.get("status") == "complete":
        return ""
    last = state.get("last_completed")
    return f" **Run {state.get('status')}**" + (f", last completed: {last}." if last else ".")


def require_records(run_dir, state, records_key="records"):
    """RunDirError when a run directory has no completed unit yet."""
    if not state.get(records_key):
        raise RunDirError(f"report: {run_dir} has no completed unit yet ({describe_run_dir(run_dir)})")
