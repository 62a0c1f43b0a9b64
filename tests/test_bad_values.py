"""Values the user gave are never changed or accepted without a word, and messages point the right way
(issue 30, items 5 and 9): the Python-API side of the cases in tests/test_bad_input.py, and the
behaviours that are not an exit-2 refusal (a printed note, a list override that now works, the
help of a launched command).
"""

import json
import os
import sys

import numpy as np
import pytest
from cli_helpers import REPO
from cli_helpers import run_script

from tfsparse import attacks
from tfsparse import data
from tfsparse import evaluation
from tfsparse import sanity
from tfsparse.compat import keras
from tfsparse.errors import ConfigError
from tfsparse.errors import DataError
from tfsparse.errors import RunDirError

sys.path.insert(0, REPO)  # configs/


def dense(classes, shape=(28, 28, 1), seed=0):
    """An untrained dense classifier with ``classes`` logits (fixed seed)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape)
    return keras.Model(inputs, keras.layers.Dense(classes)(keras.layers.Flatten()(inputs)))


@pytest.fixture(scope="module")
def mnist():
    return data.load("mnist")


# -- l∞ budgets above 1 -------------------------------------------------------------------------

@pytest.mark.parametrize("eps", [0.0, 0.3, 1.0, np.array([0.1, 1.0])])
def test_linf_budgets_up_to_1_pass(eps):
    sanity.check_linf_eps(eps, "eps")


@pytest.mark.parametrize("eps, match", [(5.0, r"at most 1 .* got 5; did you mean 5/255 = 0.0196"),
                                        (np.array([0.1, 8.0]), "got 8;"), (-0.1, "must be >= 0"),
                                        (float("nan"), "must be >= 0")])
def test_linf_budgets_above_1_or_negative_are_refused(eps, match):
    with pytest.raises(ConfigError, match=match):
        sanity.check_linf_eps(eps, "eps")


def test_the_evaluator_refuses_an_linf_attack_above_1_but_not_an_l2_one(mnist):
    model = dense(10)
    x, y = mnist.x_test[:8], mnist.y_test[:8]
    with pytest.raises(ConfigError, match=r"eps \(pgd\) is an l∞ budget"):
        evaluation.evaluate(model, x, y, [attacks.PGD(eps=5.0, step_size=0.5, steps=1)])
    sanity.check_budgets([attacks.PGD(eps=5.0, step_size=0.5, steps=1, norm="l2")])  # l2: √784 = 28 is reachable


def test_build_attacks_refuses_eps_above_1_for_every_fixed_eps_attack():
    from configs import evaluate as evaluate_config

    config = evaluate_config.get_config()
    with pytest.raises(ConfigError, match=r"--eps \(fgsm\) is an l∞ budget .* did you mean 8/255"):
        evaluation.build_attacks(["fgsm", "deepfool"], 8.0, config)
    assert len(evaluation.build_attacks(["deepfool"], 8.0, config)) == 1  # no budget: eps is not used


# -- duplicate attacks --------------------------------------------------------------------------

@pytest.mark.parametrize("names, match", [(["fgsm", "fgsm"], "'fgsm' twice"),
                                          (["fgsm", "pgd", "fgs"], "'fgsm' and 'fgs' are both fgsm"),
                                          (["cw", "cw_l2"], "both cw_l2")])
def test_build_attacks_refuses_an_attack_named_twice(names, match):
    from configs import evaluate as evaluate_config

    with pytest.raises(ConfigError, match=match):
        evaluation.build_attacks(names, 0.1, evaluate_config.get_config())


# -- a PGD step larger than its eps: a note, not a refusal -------------------------------------

def test_a_pgd_step_larger_than_eps_is_noted_in_the_report(mnist):
    model = dense(10)
    x, y = mnist.x_test[:16], mnist.y_test[:16]
    wide_step = attacks.PGD(eps=0.05, step_size=0.2, steps=2, random_start=False)
    report = evaluation.evaluate(model, x, y, [wide_step, attacks.FGSM(eps=0.05)])
    notes = [f for f in report["flags"] if f["flag"] == "step_exceeds_eps"]
    assert len(notes) == 1 and "step size 0.2 is larger than its eps 0.05" in notes[0]["detail"]
    assert notes[0]["detail"] in report["warnings"]
    usual = evaluation.evaluate(model, x, y, [attacks.PGD(eps=0.05, step_size=0.01, steps=2, random_start=False)])
    assert "step_exceeds_eps" not in {f["flag"] for f in usual["flags"]}


def test_eps_0_with_any_step_is_no_note():
    """ε = 0 is the identity (tests and ε sweeps use it with a fixed step): legal and not noteworthy."""
    assert sanity.step_note(0.0, 0.01) is None
    assert sanity.step_note(0.3, 0.3) is None
    assert sanity.step_note(0.3, 0.31).startswith("note: pgd step size 0.31 is larger than its eps 0.3")


# -- outputs vs classes -------------------------------------------------------------------------

@pytest.mark.parametrize("outputs, classes", [(10, 10), (1, 2), (2, 2), (100, 100)])
def test_outputs_that_fit_the_classes_pass(outputs, classes):
    sanity.check_outputs_for_classes(outputs, classes)


@pytest.mark.parametrize("outputs, classes", [(1, 10), (2, 10), (100, 10), (10, 2), (1, 3)])
def test_outputs_that_do_not_fit_the_classes_are_refused(outputs, classes):
    with pytest.raises(ConfigError, match=f"has {outputs} output\\(s\\) but the data has {classes} classes"):
        sanity.check_outputs_for_classes(outputs, classes)


def test_evaluate_dataset_refuses_too_many_outputs_but_takes_a_binary_model_on_a_pair():
    with pytest.raises(ConfigError, match="has 100 output"):
        evaluation.evaluate_dataset(dense(100), [attacks.FGSM(eps=0.1)], dataset="mnist", num_examples=16,
                                    progress=False, check_unbounded=False)
    report = evaluation.evaluate_dataset(dense(1), [attacks.FGSM(eps=0.1)], dataset="mnist", classes=(1, 7),
                                         num_examples=16, progress=False, check_unbounded=False)
    assert report["n"] == 16


def test_a_model_of_the_whole_dataset_on_a_class_subset_is_scored_against_the_original_labels():
    """--classes=1,7 renumbers the labels 0, 1; a 10-logit model predicts 1 and 7, so it is scored
    against 1 and 7 (before: against 0 and 1, a wrong number)."""
    model = dense(10)
    pair = data.load("mnist", classes=(1, 7))
    report = evaluation.evaluate_dataset(model, [attacks.FGSM(eps=0.0)], dataset="mnist", classes=(1, 7),
                                         num_examples=0, progress=False, check_unbounded=False)
    predicted = np.argmax(model(pair.x_test).numpy(), axis=1)
    assert report["clean_accuracy"] == pytest.approx(np.mean(predicted == np.array([1, 7])[pair.y_test]))
    with pytest.raises(ConfigError, match="has 5 output"):
        evaluation.evaluate_dataset(dense(5), [attacks.FGSM(eps=0.0)], dataset="mnist", classes=(1, 7),
                                    num_examples=16, progress=False, check_unbounded=False)


def test_zoo_models_and_loaded_models_are_checked_against_the_classes(mnist):
    import ml_collections

    from tfsparse.pipelines._build import check_model_fits
    from tfsparse.pipelines._build import num_outputs

    pair = data.load("mnist", classes=(1, 7))
    assert num_outputs(ml_collections.ConfigDict({"name": "linear_binary"}), pair) == 1
    assert num_outputs(ml_collections.ConfigDict({"name": "lenet5"}), mnist) == 10
    with pytest.raises(ConfigError, match=r"model.name .linear_binary. has 1 output.* --config.data.classes=1,7"):
        num_outputs(ml_collections.ConfigDict({"name": "linear_binary"}), mnist)
    check_model_fits(dense(10), mnist)
    check_model_fits(dense(1), pair)
    with pytest.raises(ConfigError, match="has 1 output"):
        check_model_fits(dense(1), mnist)
    with pytest.raises(ConfigError, match=r"model input \(32, 32, 3\) does not match mnist"):
        check_model_fits(dense(10, (32, 32, 3)), mnist)


def test_int8_agreement_of_a_binary_model_reads_the_sign_not_an_argmax_over_one_column():
    from tfsparse.export.writer import _agreement

    reference = np.array([[1.0], [-1.0], [2.0], [-3.0]], np.float32)
    assert _agreement("tflite_int8", reference, -reference)["top1_agreement"] == 0.0
    assert _agreement("tflite_int8", reference, reference * 0.5)["top1_agreement"] == 1.0
    ten = np.eye(4, 10, dtype=np.float32)
    assert _agreement("tflite_int8", ten, np.roll(ten, 1, axis=1))["top1_agreement"] == 0.0


# -- numbers of images --------------------------------------------------------------------------

@pytest.mark.parametrize("subset", ["first", "random"])
def test_evaluate_dataset_refuses_more_images_than_the_split_and_0_is_all(subset):
    fgsm = [attacks.FGSM(eps=0.1)]
    with pytest.raises(ConfigError, match="--num_examples=1001 but the mnist test split has 1,000 images"):
        evaluation.evaluate_dataset(dense(10), fgsm, dataset="mnist", num_examples=1001, subset=subset,
                                    progress=False, check_unbounded=False)
    report = evaluation.evaluate_dataset(dense(2), fgsm, dataset="mnist", classes=(1, 7), num_examples=0,
                                         subset=subset, progress=False, check_unbounded=False)
    assert report["n"] == report["dataset"]["num_examples"] == 200  # the embedded sample's 1s and 7s


def test_the_random_subset_is_the_one_load_num_test_drew():
    """evaluate_dataset's random subset is data.load(num_test=N)'s, so records made before stay equal."""
    fgsm = [attacks.FGSM(eps=0.0)]
    model = dense(10)
    report = evaluation.evaluate_dataset(model, fgsm, dataset="mnist", num_examples=50, subset="random", seed=3,
                                         progress=False, check_unbounded=False)
    drawn = data.load("mnist", num_test=50, seed=3)
    expected = float(np.mean(np.argmax(model(drawn.x_test).numpy(), 1) == drawn.y_test))
    assert report["clean_accuracy"] == pytest.approx(expected)


def test_export_and_guo_sections_refuse_or_note_more_images_than_the_split(mnist):
    from tfsparse.pipelines._build import check_subset_size
    from tfsparse.pipelines._build import subset_note

    check_subset_size(mnist, 1000, "export.check_examples")
    with pytest.raises(ConfigError, match="export.check_examples=5000 but the mnist test split has 1,000 images; "
                                          "set export.check_examples to at most 1000"):
        check_subset_size(mnist, 5000, "export.check_examples")
    assert subset_note(mnist, 1000, "eval.num_examples") is None
    assert subset_note(mnist, 10_000, "eval.num_examples") == (
        "note: eval.num_examples=10000 exceeds the 1,000-image mnist test split; all 1,000 are measured")


# -- data files ---------------------------------------------------------------------------------

def write_npz(path, x_train, x_test, classes=10):
    rng = np.random.default_rng(0)
    np.savez(path, x_train=x_train, x_test=x_test, y_train=rng.integers(0, classes, len(x_train)),
             y_test=rng.integers(0, classes, len(x_test)))
    return str(path)


def test_uint8_images_holding_only_0_and_1_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    binarised = rng.integers(0, 2, (2, 32, 28, 28)).astype(np.uint8)
    path = write_npz(tmp_path / "bin.npz", binarised[0], binarised[1])
    with pytest.raises(DataError, match=r"only 0 and 1 \(binarised\?\).*x.astype\(np.float32\).*x \* 255"):
        data.load("mnist", path)
    as_float = data.load("mnist", write_npz(tmp_path / "float.npz", *binarised.astype(np.float32)))
    assert as_float.x_train.max() == 1.0  # float 0/1 is [0, 1] already: kept as it is
    as_255 = data.load("mnist", write_npz(tmp_path / "255.npz", *(binarised * 255)))
    assert as_255.x_train.max() == 1.0


def test_images_of_another_datasets_shape_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    cifar = rng.integers(0, 256, (2, 16, 32, 32, 3)).astype(np.uint8)
    path = write_npz(tmp_path / "c.npz", cifar[0], cifar[1])
    with pytest.raises(DataError, match=r"mnist images are 28x28x1, but .*c.npz holds images of shape \(32, 32, 3\); "
                                        r"name the dataset the file holds \(cifar10, cifar100\)"):
        data.load("mnist", path)
    with pytest.raises(DataError, match="fashion_mnist images are 28x28x1"):
        data.load("fashion_mnist", path)
    assert data.load("cifar10", path).input_shape == (32, 32, 3)
    odd = rng.integers(0, 256, (2, 16, 20, 20)).astype(np.uint8)
    with pytest.raises(DataError, match=r"shape \(20, 20, 1\); pass cifar10 data"):
        data.load("cifar10", write_npz(tmp_path / "odd.npz", odd[0], odd[1]))


# -- item 9: messages that point the right way --------------------------------------------------

def damaged_run(folder, text):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"config": {}, "metadata": {}}))
    (folder / "results.json").write_text(text)
    return folder


@pytest.mark.parametrize("resume", [False, True])
@pytest.mark.parametrize("text", ['{"pipeline": "train", "stat', "[1, 2]"])
def test_a_damaged_results_json_gets_the_same_answer_with_and_without_resume(tmp_path, resume, text):
    import ml_collections

    from tfsparse.pipelines._run import Run

    folder = damaged_run(tmp_path / "run", text)
    with pytest.raises(RunDirError, match="has a damaged results.json .*cannot be resumed; start again with a new "
                                          "--workdir") as caught:
        Run(folder, ml_collections.ConfigDict({"seed": 0}), "train", resume=resume).prepare()
    assert "--resume" not in str(caught.value)


def test_the_output_check_suggests_overwrite_only_to_callers_that_have_it(tmp_path):
    from tfsparse.pipelines._run import check_output_file

    taken = tmp_path / "taken.md"
    taken.write_text("x")
    with pytest.raises(RunDirError, match="or pass --overwrite"):
        check_output_file(taken)
    with pytest.raises(RunDirError, match=r"choose a new file \(or remove this one\)$"):
        check_output_file(taken, overwrite_flag=None)


def test_list_valued_keys_take_the_advised_override_syntax():
    from tfsparse.cli import _ListParser

    parse = _ListParser().parse
    assert parse("(0.3, 0.5)") == [0.3, 0.5] == parse("[0.3, 0.5]") == parse("0.3,0.5")
    assert parse("0.4") == [0.4] and parse("gup,fp") == ["gup", "fp"] and parse(("a",)) == ["a"]


def test_a_list_valued_key_is_overridden_on_the_command_line(tmp_path):
    result = run_script("tune.py", "--config=configs/tune_rsr.py:quick", "--config.search.sparsities=(0.3, 0.5)",
                        "--print_config", f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "sparsities:\n  - 0.3\n  - 0.5\n" in result.stdout
    assert not (tmp_path / "w").exists()


def test_launch_local_passes_help_to_the_launched_script():
    result = run_script("launch_local.py", "--", os.path.join(REPO, "scripts", "train.py"), "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("Trains one zoo model") and result.stdout.count("Flags:") == 1
    assert "--num_workers" not in result.stdout and "worker 0" not in result.stdout
    own = run_script("launch_local.py", "--help")
    assert own.returncode == 0 and own.stdout.startswith("Runs a script as a cluster")


@pytest.mark.slow
def test_evaluate_prints_a_note_for_a_pgd_step_larger_than_eps_and_runs(tmp_path):
    model = dense(10)
    model.save(tmp_path / "m.h5")
    result = run_script("evaluate.py", f"--model={tmp_path / 'm.h5'}", "--attacks=pgd", "--eps=0.005",
                        "--num_examples=20", "--config.attacks.pgd.steps=2", "--config.check_unbounded=false")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "note: pgd step size 0.01 is larger than its eps 0.005" in result.stdout
