"""Aggregation of per-seed records and markdown tables (read from results, not live objects)."""

import collections

import numpy as np


def aggregate(records, by, keys):
    """Groups ``records`` by ``by`` and returns mean/std/count of each of ``keys`` per group.

    Returns:
      A list (ordered by group value) of ``{by: value, "n": count, key: mean, key + "_std": std}``.
    """
    groups = collections.OrderedDict()
    for record in sorted(records, key=lambda r: r[by]):
        groups.setdefault(record[by], []).append(record)
    rows = []
    for value, members in groups.items():
        row = {by: value, "n": len(members)}
        for key in keys:
            values = np.array([m[key] for m in members if m.get(key) is not None], dtype=np.float64)
            row[key] = float(values.mean()) if values.size else None
            row[key + "_std"] = float(values.std()) if values.size else None
        rows.append(row)
    return rows


def markdown_table(rows, columns):
    """Renders ``rows`` as a markdown table.

    Args:
      rows: dicts as returned by ``aggregate`` (a ``key_std`` entry is shown as ± when a
        group has more than one record).
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
            std = row.get(key + "_std")
            if std is not None and row.get("n", 1) > 1:
                text += " ± " + fmt.format(std)
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
