"""reporting.aggregate / markdown_table against hand-listed values and NumPy.

The std is the POPULATION standard deviation (``np.std``, ddof = 0), as
``reporting.aggregate`` computes it; the values below are chosen so that the sample std
(ddof = 1) differs, so a switch of convention fails here.
"""

import numpy as np
import pytest

from tfsparse import reporting

# Three seeds at p = 0.5, one at p = 0.9, two at p = 0.3 (given out of order); r2 is missing
# (None) for one p = 0.3 record and for the only p = 0.9 record.
RECORDS = [
    {"p": 0.5, "seed": 0, "acc": 0.90, "r2": 1.0},
    {"p": 0.3, "seed": 0, "acc": 0.97, "r2": 2.0},
    {"p": 0.9, "seed": 0, "acc": 0.40, "r2": None},
    {"p": 0.5, "seed": 1, "acc": 0.80, "r2": 1.5},
    {"p": 0.3, "seed": 1, "acc": 0.95, "r2": None},
    {"p": 0.5, "seed": 2, "acc": 0.70, "r2": 3.5},
]
EXPECTED = {  # p: (n, acc values, r2 values), listed by hand
    0.3: (2, [0.97, 0.95], [2.0]),
    0.5: (3, [0.90, 0.80, 0.70], [1.0, 1.5, 3.5]),
    0.9: (1, [0.40], []),
}


def test_aggregate_means_and_population_stds_per_group():
    rows = reporting.aggregate(RECORDS, "p", ["acc", "r2"])
    assert [row["p"] for row in rows] == [0.3, 0.5, 0.9]  # ordered by group value
    for row in rows:
        n, acc, r2 = EXPECTED[row["p"]]
        assert row["n"] == n
        assert row["acc"] == pytest.approx(np.mean(acc))
        assert row["acc_std"] == pytest.approx(np.std(acc, ddof=0))
        if len(acc) > 1:
            assert row["acc_std"] != pytest.approx(np.std(acc, ddof=1))
        if r2:
            assert row["r2"] == pytest.approx(np.mean(r2))  # None entries are left out
            assert row["r2_std"] == pytest.approx(np.std(r2, ddof=0))
        else:
            assert row["r2"] is None and row["r2_std"] is None
    # Hand values for p = 0.5: mean 0.8, population std sqrt(0.02 / 3).
    mid = rows[1]
    assert mid["acc"] == pytest.approx(0.8) and mid["acc_std"] == pytest.approx(np.sqrt(0.02 / 3))
    assert mid["r2"] == pytest.approx(2.0) and mid["r2_std"] == pytest.approx(np.sqrt(14 / 3) / 2)


def _cells(table):
    lines = table.strip().splitlines()
    return lines[0], lines[1], [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


def test_aggregate_ci95_is_the_student_t_half_width():
    rows = reporting.aggregate(RECORDS, "p", ["acc", "r2"])
    # p = 0.5, acc 0.9/0.8/0.7: sample std 0.1, t(0.975, 2) = 4.302653 -> 4.302653 * 0.1 / sqrt(3).
    assert rows[1]["acc_ci95"] == pytest.approx(4.302653 * 0.1 / np.sqrt(3), rel=1e-6)
    # p = 0.3, acc 0.97/0.95: sample std 0.01414, t(0.975, 1) = 12.7062 -> 12.7062 * 0.01.
    assert rows[0]["acc_ci95"] == pytest.approx(12.706205 * 0.01, rel=1e-6)
    assert rows[0]["r2_ci95"] is None  # one value: no interval
    assert rows[2]["acc_ci95"] is None and rows[2]["r2_ci95"] is None


def test_markdown_table_shows_plus_minus_only_for_several_records():
    rows = reporting.aggregate(RECORDS, "p", ["acc", "r2"])
    table = reporting.markdown_table(
        rows, [("p", "p", "{:.1f}"), ("n", "seeds", "{}"), ("acc", "accuracy", "{:.3f}"), ("r2", "r2", "{:.2f}")]
    )
    assert table.endswith("\n")
    header, rule, body = _cells(table)
    assert header == "| p | seeds | accuracy | r2 |"
    assert rule == "|---:|---:|---:|---:|"
    assert body == [
        # ± is the 95 % CI half-width; r2 at p = 0.3 has a single value: no interval.
        ["0.3", "2", f"{0.96:.3f} ± {12.706205 * 0.01:.3f}", "2.00"],
        ["0.5", "3", f"0.800 ± {4.302653 * 0.1 / np.sqrt(3):.3f}", f"2.00 ± {4.302653 * np.std([1, 1.5, 3.5], ddof=1) / np.sqrt(3):.2f}"],
        ["0.9", "1", "0.400", "–"],  # one record: no ±; missing value: a dash
    ]


def test_markdown_table_of_raw_rows_without_n_or_std():
    table = reporting.markdown_table([{"method": "gup", "acc": 0.5, "acc_std": 0.1}, {"method": "fp", "acc": None}],
                                     [("method", "method", "{}"), ("acc", "acc", "{:.2f}")])
    # Without "n" a row counts as one record: the std is not shown.
    assert _cells(table)[2] == [["gup", "0.50"], ["fp", "–"]]


def test_wilson_interval_matches_hand_computed_values():
    from tfsparse.metrics.intervals import wilson_interval

    # 90 of 100 at 95 % (z = 1.959964): (0.8256, 0.9448), computed by hand from the Wilson formula.
    low, high = wilson_interval(0.9, 100)
    assert low == pytest.approx(0.825634, abs=1e-6) and high == pytest.approx(0.944771, abs=1e-6)
    # At 0 % the interval is not a point (the normal approximation's failure): [0, z²/(n + z²)].
    low, high = wilson_interval(0.0, 40)
    assert low == 0.0 and high == pytest.approx(1.959964 ** 2 / (40 + 1.959964 ** 2), rel=1e-5)
    with pytest.raises(ValueError):
        wilson_interval(1.2, 10)


def test_artifact_report_is_generated_from_export_folders(tmp_path):
    import json

    from tfsparse.errors import ConfigError
    from tfsparse.pipelines.report import artifact_section

    folder = tmp_path / "lenet5_g90"
    folder.mkdir()
    export = {"source": {"weight_sparsity": 0.9},
              "formats": {"tflite": {"weight_sparsity": 0.9, "gzip_bytes": 12345, "top1_agreement": 1.0},
                          "tflite_int8": {"weight_sparsity": 0.9, "gzip_bytes": 4321, "top1_agreement": 0.97}}}
    robustness = {"eps": 0.3, "num_examples": 100, "confidence": 0.95,
                  "float": {m: {"accuracy": 0.9, "interval": [0.8256, 0.9448]} for m in ("clean", "pgd", "square")},
                  "artifacts": {"tflite": {"clean": 0.9, "pgd": 0.9, "square": 0.9},
                                "tflite_int8": {"clean": 0.9, "pgd": 0.8, "square": 0.9}},
                  "flags": [{"format": "tflite_int8", "measure": "pgd", "detail": "..."}]}
    (folder / "export.json").write_text(json.dumps(export))
    (folder / "robustness.json").write_text(json.dumps(robustness))
    text = artifact_section([str(folder)])
    rows = [line for line in text.splitlines() if line.startswith("| lenet5_g90")]
    assert rows[0].startswith("| lenet5_g90 | float (source) | 0.900 |") and "0.9000 (0.826–0.945)" in rows[0]
    assert rows[1] == "| lenet5_g90 | tflite | 0.900 | 12,345 | 1.0000 | 0.9000 | 0.9000 | 0.9000 | no |"
    assert rows[2] == "| lenet5_g90 | tflite_int8 | 0.900 | 4,321 | 0.9700 | 0.9000 | 0.8000 | 0.9000 | pgd |"
    assert "ε 0.3" in text and "first 100 test images" in text
    (folder / "robustness.json").unlink()
    with pytest.raises(ConfigError, match="robustness.json does not exist"):
        artifact_section([str(folder)])


def test_robustness_table_is_generated_from_evaluate_reports(tmp_path):
    import json

    from tfsparse.errors import ConfigError
    from tfsparse.pipelines.report import evaluation_section

    def report(run, attacks, worst):
        return {"n": 1000, "clean_accuracy": 0.97, "model": {"path": str(tmp_path / run / "saved_model")},
                "dataset": {"name": "mnist", "subset": "first"}, "worst_case": {"accuracy": worst},
                "attacks": {k: {"accuracy": a, "params": {"name": k, "eps": 0.3}} for k, a in attacks.items()}}

    (tmp_path / "pgd_run").mkdir()
    (tmp_path / "pgd_run" / "results.json").write_text(json.dumps(
        {"training": "pgd", "weight_sparsity": 0.5, "train_steps": 2814, "train_seconds": 1883.3}))
    (tmp_path / "a.json").write_text(json.dumps(report("pgd_run", {"pgd": 0.517, "autoattack": 0.318}, 0.318)))
    (tmp_path / "b.json").write_text(json.dumps(report("no_run", {"fgsm": 0.09}, 0.0)))
    text = evaluation_section([str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert lines[0] == ("| model | training | clean | pgd | autoattack | fgsm | worst case | weight sparsity "
                        "| optimizer steps | train s |")
    assert lines[2] == "| pgd_run | pgd | 0.970 | 0.517 | 0.318 | – | 0.318 | 0.500 | 2,814 | 1883 |"
    assert lines[3] == "| no_run | – | 0.970 | – | – | 0.090 | 0.000 | – | – | – |"
    assert "ε 0.3 (mnist, first 1,000 test images)" in text
    (tmp_path / "c.json").write_text(json.dumps({"status": "complete"}))
    with pytest.raises(ConfigError, match="not an evaluate.py report"):
        evaluation_section([str(tmp_path / "c.json")])


def test_results_documents_name_data_beside_the_repository_relatively(tmp_path, monkeypatch):
    # Issue 30, item 11: RESULTS.md headings carried one machine's /work/shared/... paths.
    from tfsparse.reporting import data_label

    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.chdir(repo)
    assert data_label(str(tmp_path / "shared" / "data" / "mnist.npz")) == "../shared/data/mnist.npz"
    assert data_label(str(repo / "data" / "x.npz")) == "data/x.npz"
    assert data_label("/elsewhere/mnist.npz") == "/elsewhere/mnist.npz"
    assert data_label("embedded sample") == "embedded sample" and data_label(None) is None
