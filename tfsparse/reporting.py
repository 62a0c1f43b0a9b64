"""Aggregation of per-seed records and markdown tables (read from results, not live objects)."""

import collections
import math
import os

import numpy as np

from tfsparse.errors import ConfigError
from tfsparse.metrics.intervals import mean_interval


def data_label(source):
    """A run's data source as a results document names it: a path near here, relative.

    Run directories record the data path as given, often absolute (a path of one machine's
    layout); a document generated from them is read on other machines, so a path inside the current directory's parent is shown relative to the
    current directory (``../shared/data/mnist.npz`` from the repository root). Other
    sources (``embedded sample``, ``tfds:mnist``, a path elsewhere) are kept as they are.
    """
    if not isinstance(source, str) or not os.path.isabs(source):
        return source
    here = os.getcwd()
    if os.path.commonpath([source, os.path.dirname(here)]) == os.path.dirname(here):
        return os.path.relpath(source, here)
    return source


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


def aggregate_in_order(records, by, keys, *, keep=(), nan_undefined=(), confidence=0.95):
    """:func:`aggregate` with rows in the order their ``by`` value first appears in ``records``.

    Each row also carries the ``keep`` fields of its first record (the setting a label names).
    ``nan_undefined``: keys whose NaN means "undefined in this seed" (e.g. a mean distance over
    no flipped sample): left out of that row's mean rather than turning it into NaN. The
    caller's records are not changed.
    """
    def undefined(key, value):
        return key in nan_undefined and isinstance(value, float) and math.isnan(value)

    records = [{k: None if undefined(k, v) else v for k, v in r.items()} for r in records]
    first = {}
    for record in records:
        first.setdefault(record[by], record)
    rows = aggregate(records, by, keys, confidence)
    for row in rows:
        row.update({field: first[row[by]][field] for field in keep})
    position = {value: index for index, value in enumerate(first)}
    return sorted(rows, key=lambda row: position[row[by]])


def paired_differences(pairs, by, keys, suffixes):
    """Per group, mean ± 95 % CI over seeds of paired differences: a record minus its baseline record.

    A record and its baseline share a seed (the seed's dense reference, its ticket), so these
    intervals, unlike the unpaired ones of :func:`aggregate`, leave out the spread between seeds.

    Args:
      pairs: ``[(record, baseline, suffix)]``: ``record[by]`` names the group; the difference of
        each of ``keys`` is stored as ``<key>_vs_<suffix>``.
      by: the group field; keys: the measures; suffixes: every suffix, in column order.

    Returns:
      ``{group: {"<key>_vs_<suffix>": mean, "<key>_vs_<suffix>_ci95": ..., "..._std": ...}}``.
    """
    differences = [{by: r[by], **{f"{k}_vs_{suffix}": r[k] - b[k] for k in keys}} for r, b, suffix in pairs]
    columns = [f"{k}_vs_{suffix}" for suffix in suffixes for k in keys]
    return {d[by]: {k: v for k, v in d.items() if k not in (by, "n")} for d in aggregate(differences, by, columns)}


def pooled_records(runs):
    """The records of several run directories of one table, each seed counted once.

    Long tables run one seed per directory (``--config.seeds='(1,)'``) and scripts/report.py
    pools them; a seed found in two directories (one directory passed twice, or a seed run
    twice) would silently count twice and narrow the interval, so it is refused.

    Args:
      runs: ``[(run_dir, records), ...]``; every record carries its ``seed``.

    Returns:
      The records of all runs, in the order given.

    Raises:
      ConfigError: when two run directories hold the same seed.
    """
    owner, pooled = {}, []
    for run_dir, records in runs:
        for seed in sorted({r["seed"] for r in records}):
            if seed in owner:
                raise ConfigError(f"seed {seed} is in both {owner[seed]} and {run_dir}; pass each seed's run "
                                  "directory once")
            owner[seed] = run_dir
        pooled.extend(records)
    return pooled


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


# Over-pruning detector tolerances (Guo et al. 2018 §4.1 / §5): accuracy "still holds" within
# 1 point of the dense round; r2 "falls" when its mean drops below its running peak by more than
# the larger of the two rounds' 95 % CI half-widths and 2 % of that peak (the CI alone is
# undefined with one seed, and a few images' noise would otherwise trip the detector).
OVER_PRUNING_TOLERANCES = {"clean_accuracy_drop": 0.01, "r2_relative_drop": 0.02}


def over_pruning(records, measures, r2_measures=("r2", "r2_cw"), tolerances=None):
    """The practitioner's warning sign of Guo et al. 2018: r2 falling while accuracy still holds.

    Guo et al. observe (§4.1, §5) that r2 starts decreasing "much earlier than the benign-set
    accuracy", so a model can be over-pruned for l2 robustness while its clean accuracy looks
    fine. From the per-(seed, round) records of a sweep (a pure function of the records), with
    the means over seeds per round:

    * ``peaks[m]``: the round (and its mean weight sparsity) where measure ``m``'s mean is
      largest (the first such round on ties);
    * ``r2_falls[m]`` for each r2 measure present: the first round ``r`` > 0 whose mean is below
      the running peak ``P = max_{r' ≤ r} mean_{r'}`` by more than
      ``max(ci95_r, ci95_P, r2_relative_drop · P)`` while the mean clean accuracy is at least the
      dense round's minus ``clean_accuracy_drop``; None when r2 never falls that way.

    Args:
      records: dicts with ``round``, ``sparsity``, ``clean_accuracy`` and the measures.
      measures: the measure keys to report peaks of (those absent from the records are skipped).
      r2_measures: which of them are r2 measures checked for a fall.
      tolerances: overrides of :data:`OVER_PRUNING_TOLERANCES`.

    Returns:
      ``{"tolerances", "peaks": {m: {"round", "sparsity", "value"}}, "r2_falls": {m: {"round",
      "sparsity", "value", "peak_round", "peak_value", "clean_accuracy", "dense_clean_accuracy"}
      or None}}``.
    """
    tol = dict(OVER_PRUNING_TOLERANCES, **(tolerances or {}))
    present = [m for m in measures if any(r.get(m) is not None for r in records)]
    rows = aggregate(records, "round", ["sparsity", "clean_accuracy", *present])
    found = {"tolerances": tol, "peaks": {}, "r2_falls": {}}
    for m in present:
        best = max((row for row in rows if row[m] is not None and np.isfinite(row[m])),
                   key=lambda row: row[m], default=None)
        found["peaks"][m] = None if best is None else {"round": best["round"], "sparsity": best["sparsity"],
                                                       "value": best[m]}
    dense_clean = rows[0]["clean_accuracy"] if rows else None
    for m in (m for m in present if m in r2_measures):
        found["r2_falls"][m] = None
        peak = None
        for row in rows:
            value = row[m]
            if value is None or not np.isfinite(value):
                continue
            if peak is None or value > peak[m]:
                peak = row
                continue
            margin = max(row.get(m + "_ci95") or 0.0, peak.get(m + "_ci95") or 0.0, tol["r2_relative_drop"] * peak[m])
            holds = row["clean_accuracy"] >= dense_clean - tol["clean_accuracy_drop"]
            if value < peak[m] - margin and holds:
                found["r2_falls"][m] = {"round": row["round"], "sparsity": row["sparsity"], "value": value,
                                        "peak_round": peak["round"], "peak_value": peak[m],
                                        "clean_accuracy": row["clean_accuracy"], "dense_clean_accuracy": dense_clean}
                break
    return found


def over_pruning_text(found, labels):
    """One markdown paragraph on :func:`over_pruning`'s findings; ``labels`` maps measure -> name."""
    tol = found["tolerances"]
    peaks = "; ".join(f"{labels.get(m, m)} at round {p['round']} ({100 * p['sparsity']:.1f} % sparse, "
                      f"{p['value']:.4f})" for m, p in found["peaks"].items() if p is not None)
    lines = [f"Peaks (mean over seeds): {peaks}."]
    for m, fall in found["r2_falls"].items():
        if fall is None:
            lines.append(f"{labels.get(m, m)} never falls below its running peak while clean accuracy holds.")
        else:
            lines.append(
                f"**Over-pruning sign**: {labels.get(m, m)} falls at round {fall['round']} "
                f"({100 * fall['sparsity']:.1f} % sparse) to {fall['value']:.4f} "
                f"from its peak {fall['peak_value']:.4f} "
                f"(round {fall['peak_round']}) while clean accuracy is {fall['clean_accuracy']:.4f} "
                f"(dense {fall['dense_clean_accuracy']:.4f}).")
    lines.append(f"(A fall: below the running peak by more than the larger 95 % CI half-width and "
                 f"{100 * tol['r2_relative_drop']:g} % of the peak; accuracy holds within "
                 f"{tol['clean_accuracy_drop']:g} of the dense round.)")
    return " ".join(lines) + "\n"
