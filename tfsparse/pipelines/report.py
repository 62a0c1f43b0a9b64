"""``write_report(folders, output)``: results documents generated from run folders (scripts/report.py).

Numbers in docs/RESULTS.md are never copied by hand: each section is the output of this
module over what the runs wrote. An argument is recognised by what it is:

* a run directory of an experiment pipeline (``results.json`` naming its ``pipeline``): the
  section that pipeline's ``report_section`` renders (run directories of one kind together,
  e.g. the seeds or models of one table);
* an export folder of scripts/export.py --robustness (``export.json`` + ``robustness.json``):
  the robustness-of-the-artifact table;
* an ``evaluate.py --output`` JSON file: one row of a robustness table (clean accuracy, each
  attack's accuracy, the per-sample worst case), with the training run's ``results.json``
  (next to the evaluated ``saved_model/``) adding training, weight sparsity, steps and time.
"""

import json
import os

from tfsparse import reporting
from tfsparse import pipelines
from tfsparse import results
from tfsparse.errors import ConfigError
from tfsparse.pipelines._run import check_output_file
from tfsparse.pipelines.export import ROBUSTNESS_FILE

EXPORT_FILE = "export.json"


def _load(folder, name):
    path = os.path.join(folder, name)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError:
        raise ConfigError(f"{path} does not exist; report.py reads export folders (export.json and "
                          f"robustness.json of scripts/export.py --robustness) and evaluate.py JSON files") from None
    except ValueError as error:
        raise ConfigError(f"{path} is not valid JSON ({error}); re-run the step that wrote it") from None


def artifact_section(folders):
    """The markdown of the artifact-robustness table over export folders (one block per model)."""
    rows = []
    settings = set()
    for folder in folders:
        export, robustness = _load(folder, EXPORT_FILE), _load(folder, ROBUSTNESS_FILE)
        rows.extend(reporting.artifact_rows(export, robustness, os.path.basename(os.path.normpath(folder))))
        settings.add((robustness["eps"], robustness["num_examples"], robustness["confidence"]))
    eps, n, confidence = sorted(settings)[0]
    mixed = " (settings differ between folders: " + "; ".join(map(str, sorted(settings))) + ")" if len(settings) > 1 else ""
    return (f"Accuracy at ε {eps:g} (l∞) on the first {n:,} test images{mixed}. PGD is white box on the float "
            f"model and transferred from it to each artifact; Square queries each model itself. In brackets: "
            f"the float model's {confidence:.0%} Wilson interval; an artifact outside it is flagged.\n\n"
            + reporting.markdown_table(rows, reporting.ARTIFACT_COLUMNS))


def evaluation_section(files):
    """The markdown of a robustness table over ``evaluate.py`` reports, one row per file."""
    reports = [_load(os.path.dirname(os.path.abspath(f)), os.path.basename(f)) for f in files]
    for file, report in zip(files, reports):
        if not isinstance(report, dict) or "attacks" not in report or "model" not in report:
            raise ConfigError(f"{file} is not an evaluate.py report (no 'attacks' and 'model'); pass the file "
                              "written by scripts/evaluate.py --output")
    rows, attacks = [], []
    for report in reports:
        run_dir = os.path.dirname(report["model"]["path"].rstrip("/"))
        run = _load(run_dir, "results.json") if os.path.isfile(os.path.join(run_dir, "results.json")) else None
        rows.append(reporting.evaluation_row(report, run))
        attacks += [key for key in report["attacks"] if key not in attacks]
    settings = {(r["dataset"]["name"], r["dataset"]["subset"], r["n"]) for r in reports}
    eps = {entry["params"].get("eps") for r in reports for entry in r["attacks"].values()} - {None}
    columns = [("model", "model", "{}"), ("training", "training", "{}"), ("clean_accuracy", "clean", "{:.3f}")]
    columns += [(key, key, "{:.3f}") for key in attacks]
    columns += [("worst_case", "worst case", "{:.3f}"), ("weight_sparsity", "weight sparsity", "{:.3f}"),
                ("train_steps", "optimizer steps", "{:,}"), ("train_seconds", "train s", "{:.0f}")]
    described = "; ".join(f"{name}, {subset} {n:,} test images" for name, subset, n in sorted(settings))
    return (f"Accuracy under each attack at ε {', '.join(f'{e:g}' for e in sorted(eps))} ({described}); "
            "worst case: a sample counts as robust only if no l∞ attack fooled it.\n\n"
            + reporting.markdown_table(rows, columns))


def write_report(paths, output=None, log=print):
    """Writes (or prints, without ``output``) the markdown generated from ``paths``.

    Run directories give their pipeline's section, export folders the artifact table,
    ``evaluate.py`` JSON files the robustness table.

    Raises:
      tfsparse.errors.UsageError: on a path of no known kind, or an existing ``output``.
    """
    if not paths:
        raise ConfigError("name at least one export folder or evaluate.py JSON file")
    if output:
        check_output_file(output, overwrite=False, overwrite_flag=None)  # report.py has no --overwrite
    runs = {}
    for path in paths:
        if os.path.isfile(os.path.join(path, "results.json")):
            runs.setdefault(_load(path, "results.json").get("pipeline"), []).append(path)
    run_dirs = {p for group in runs.values() for p in group}
    folders = [p for p in paths if os.path.isdir(p) and p not in run_dirs]
    files = [p for p in paths if not os.path.isdir(p)]
    sections = [pipelines.report_section(kind)(group) for kind, group in runs.items()]
    if files:
        sections.append("## Robustness under attack\n\n" + evaluation_section(files))
    if folders:
        sections.append("## Robustness of the exported artifacts\n\n" + artifact_section(folders))
    text = "\n".join(sections)
    if output:
        results.atomic_write_text(output, text)
        log(f"report: {output}")
    else:
        log(text)
    return text
