"""The Wang one-shot table (tfsparse.pipelines.wang) in-process, with its re-initialised rows.

A spy around ``robustness_record`` (which still runs) keeps a copy of every model that gets a
row, so the weights behind each row are checked here, from outside the pipeline: zeros
counted in the conv/dense kernels, parameters counted by Keras, masks and values compared.
"""

import json
import os
import sys

import numpy as np
import pytest

from tfsparse.compat import keras
from tfsparse.pipelines import wang

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
P = 0.5


def _kernels(model):
    """{layer name: kernel} of the conv and dense layers, read directly from Keras."""
    return {layer.name: layer.get_weights()[0] for layer in model.layers
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))}


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    sys.path.insert(0, REPO)
    from configs import wang_mnist

    config = wang_mnist.get_config("quick")
    config.methods = ("gup", "fp")
    config.sparsities = (P,)
    config.train.steps = 30
    config.prune.retrain_steps = 5
    config.eval.num_examples = 20
    config.eval.deepfool_max_iter = 5
    config.data.num_train = 300
    config.data.num_test = 100
    config.data.classes = "1,7"  # two classes: DeepFool traces 2 class gradients, not 10
    assert config.model.name == "lenet5_bn" and tuple(config.inits) == ("inherited", "reinit")

    seen = []
    real_record = wang.robustness_record

    def spy(model, dataset, config):
        seen.append({"kernels": _kernels(model), "params": model.count_params(),
                     "x": dataset.x_test[:50], "logits": model(dataset.x_test[:50], training=False).numpy()})
        return real_record(model, dataset, config)

    mp = pytest.MonkeyPatch()
    mp.setattr(wang, "robustness_record", spy)
    try:
        workdir = wang.run_oneshot_table(config, str(tmp_path_factory.mktemp("wang") / "w"), log=lambda *_: None)
    finally:
        mp.undo()
    state = json.loads(open(os.path.join(workdir, "results.json"), encoding="utf-8").read())
    return workdir, state, seen


def test_one_row_per_method_p_and_init_and_complete(table):
    workdir, state, seen = table
    keys = [(r["method"], r["p"], r["init"]) for r in state["rows"]]
    assert keys == [("dense", 0.0, "inherited"), ("gup", P, "inherited"), ("gup", P, "reinit"),
                    ("fp", P, "inherited"), ("fp", P, "reinit")]
    assert state["status"] == "complete" and len(seen) == len(keys)
    for name in ("results.csv", "results.md", "config.json"):
        assert os.path.isfile(os.path.join(workdir, name)), name
    assert open(os.path.join(workdir, "results.md"), encoding="utf-8").read().count("reinit") == 2


def test_gup_reinit_keeps_the_mask_with_fresh_weights(table):
    _, state, seen = table
    rows = {(r["method"], r["init"]): (r, s) for r, s in zip(state["rows"], seen)}
    (inh_row, inh), (re_row, re) = rows[("gup", "inherited")], rows[("gup", "reinit")]
    for row, model in ((inh_row, inh), (re_row, re)):
        zeros = sum(int(np.count_nonzero(k == 0)) for k in model["kernels"].values())
        size = sum(k.size for k in model["kernels"].values())
        assert zeros / size == pytest.approx(P, abs=2e-3)            # GUP: global ratio p
        assert row["sparsity"] == pytest.approx(zeros / size, abs=1e-9)
        assert row["params_reduction"] == pytest.approx(row["sparsity"])
    for name, kernel in inh["kernels"].items():
        np.testing.assert_array_equal(kernel == 0, re["kernels"][name] == 0, err_msg=name)  # same mask
        kept = kernel != 0
        # Fresh weights: the surviving values are not the inherited ones.
        assert np.mean(np.isclose(kernel[kept], re["kernels"][name][kept], atol=1e-6)) < 0.01, name
    assert not np.allclose(inh["logits"], re["logits"], atol=1e-3)


def test_fp_reinit_has_the_inherited_structure_and_fresh_weights(table):
    _, state, seen = table
    rows = {(r["method"], r["init"]): (r, s) for r, s in zip(state["rows"], seen)}
    dense = rows[("dense", "inherited")][1]
    (inh_row, inh), (re_row, re) = rows[("fp", "inherited")], rows[("fp", "reinit")]
    assert {n: k.shape for n, k in inh["kernels"].items()} == {n: k.shape for n, k in re["kernels"].items()}
    assert inh["params"] == re["params"] < dense["params"]
    # params_reduction = 1 − params / dense params (every weight, BN statistics included).
    for row, model in ((inh_row, inh), (re_row, re)):
        assert row["params_reduction"] == pytest.approx(1 - model["params"] / dense["params"], abs=1e-9)
    assert re_row["params_reduction"] == pytest.approx(inh_row["params_reduction"], abs=1e-12)
    # FP removes whole filters: the conv layers have about (1 − p) of their dense filters.
    for name, kernel in inh["kernels"].items():
        if kernel.ndim == 4:
            assert kernel.shape[-1] == pytest.approx((1 - P) * dense["kernels"][name].shape[-1], abs=1)
    for name, kernel in inh["kernels"].items():
        assert not np.allclose(kernel, re["kernels"][name], atol=1e-3), name
    assert not np.allclose(inh["logits"], re["logits"], atol=1e-3)
