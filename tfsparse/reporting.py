"""Aggregation of per-seed records and markdown tables (read from results, not live objects)."""

import collections
import os

import numpy as np

from tfsparse.metrics.intervals import mean_interval


def aggregate(records, by, keys, confidence=0.95):
    """Groups ``records`` by ``by`` and returns, per group, each of ``keys``' mean, std and CI.

    A group's records are the seeds of one setting; ``key_ci95`` is the half-width of the
    Student t interval of the mean (:func:`tfsparse.metrics.intervals.mean_interval`), None
    when the group has fewer than two values of ``key``.

    Returns:
      A list (ordered by group value) of ``{by: value, "n": count, key: mean, key + "_std":
      population std, key + "_ci95": CI half-width}`` (None entries of a key are left out).
    """
    groups = collections.OrderedDict()
    for record in sorted(records, key=lambda r: r[by]):
        groups.setdefault(record[by], []).append(record)
    rows = []
    for value, members in groups.items():
        row = {by: value, "n": len(members)}
        for key in keys:
            values = np.array([m[key] for m in members if m.get(key) is not None], dtype=np.float64)
            row[key], row[key + "_ci95"] = mean_interval(values, confidence)
            row[key + "_std"] = float(values.std()) if values.size else None
        rows.append(row)
    return rows


def markdown_table(rows, columns):
    """Renders ``rows`` as a markdown table.

    Args:
      rows: dicts as returned by ``aggregate``: a value with a ``key_ci95`` entry (two or
        more seeds) is shown as mean ± 95 % CI half-width.
      columns: ``[(key, header, format)]``, e.g. ``("r2", "r2", "{:.3f}")``.
    """
    lines = ["| " + " | ".join(header for _, header, _ in columns) + " |"]
    lines.append("|" + "|".join("---:" for _ in columns) + "|")
    for row in rows:
        cells = []
        for key, _, fmt in columns:
            value = row.get(key)
            if value is None:
                cells.append("–")
                continue
            text = fmt.format(value)
            half = row.get(key + "_ci95")
            if half is not None:
                text += " ± " + fmt.format(half)
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# Columns of the artifact-robustness table (docs/RESULTS.md), one row per model and format.
ARTIFACT_COLUMNS = [
    ("model", "model", "{}"), ("format", "format", "{}"), ("weight_sparsity", "weight sparsity", "{:.3f}"),
    ("gzip_bytes", "gzip bytes", "{:,}"), ("top1_agreement", "top-1 agreement", "{:.4f}"),
    ("clean", "clean", "{}"), ("pgd", "PGD", "{}"), ("square", "Square", "{}"), ("flags", "flagged", "{}"),
]


def artifact_rows(export, robustness, name):
    """Rows of the artifact-robustness table for one ``export.json`` / ``robustness.json`` pair.

    The first row is the float source model (its accuracies with their Wilson interval); then
    one row per artifact, whose flagged measures lie outside that interval.

    Args:
      export: the dict of ``export.json``; robustness: the dict of ``robustness.json``;
      name: the model's label in the table.
    """
    def accuracy(entry):
        low, high = entry["interval"]
        return f"{entry['accuracy']:.4f} ({low:.3f}–{high:.3f})"

    rows = [{"model": name, "format": "float (source)", "weight_sparsity": export["source"]["weight_sparsity"],
             **{m: accuracy(robustness["float"][m]) for m in ("clean", "pgd", "square")}, "flags": ""}]
    for fmt, entry in export["formats"].items():
        if fmt not in robustness["artifacts"]:
            continue
        flagged = [f["measure"] for f in robustness["flags"] if f["format"] == fmt]
        rows.append({"model": name, "format": fmt, "weight_sparsity": entry["weight_sparsity"],
                     "gzip_bytes": entry["gzip_bytes"], "top1_agreement": entry["top1_agreement"],
                     **{m: f"{a:.4f}" for m, a in robustness["artifacts"][fmt].items()},
                     "flags": ", ".join(flagged) or "no"})
    return rows


def evaluation_row(report, run):
    """One row of a robustness table from an ``evaluate.py`` report and the model's training run.

    Args:
      report: the dict of an ``evaluate.py --output`` file.
      run: the ``results.json`` of the ``train.py`` run that produced the model, or None.

    Returns:
      ``{"model", "training", "clean_accuracy", <attack key>: accuracy..., "worst_case",
      "weight_sparsity", "train_steps", "train_seconds"}`` (run fields None without ``run``).
    """
    run = run or {}
    row = {"model": os.path.basename(os.path.dirname(report["model"]["path"].rstrip("/"))),
           "training": run.get("training"), "clean_accuracy": report["clean_accuracy"],
           "worst_case": (report.get("worst_case") or {}).get("accuracy"),
           "weight_sparsity": run.get("weight_sparsity"), "train_steps": run.get("train_steps"),
           "train_seconds": run.get("train_seconds")}
    row.update({key: entry.get("accuracy") for key, entry in report["attacks"].items()})
    return row
