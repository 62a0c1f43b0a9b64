"""``write_report(folders, output)``: results documents generated from run folders (scripts/report.py).

Numbers in docs/RESULTS.md are never copied by hand: each section is the output of this
module over the folders the runs wrote. A folder is recognised by what it holds; today the
export folders of scripts/export.py (``export.json`` + ``robustness.json``: the robustness of
shipped artifacts).
"""

import json
import os

from tfsparse import reporting
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
        raise ConfigError(f"{folder} has no {name}; report.py reads export folders written by "
                          f"scripts/export.py --robustness") from None
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


def write_report(folders, output=None, log=print):
    """Writes (or prints, without ``output``) the markdown generated from ``folders``.

    Raises:
      tfsparse.errors.UsageError: on a folder without the files of a known kind, or an
        existing ``output``.
    """
    if not folders:
        raise ConfigError("name at least one run folder")
    if output:
        check_output_file(output, overwrite=False)
    text = "## Robustness of the exported artifacts\n\n" + artifact_section(folders)
    if output:
        results.atomic_write_text(output, text)
        log(f"report: {output}")
    else:
        log(text)
    return text
