"""The public surface a Keras user meets (issue 31 item 7), through ``import tfsparse`` only.

``tfsparse.sparsity`` has one name per thing (a curated ``__all__``, implementation modules
private), ``tfsparse.AutoAttack`` sits beside ``tfsparse.PGD``, ``tfsparse.PGD()`` is the CLI's
default PGD, ``strip`` says when nothing was pruned yet, and a model saved while wrapped loads.
"""

import importlib.util
import os
import sys
import types
import warnings

import numpy as np
import pytest

import tfsparse
from tfsparse.compat import keras  # the library's Keras handle (tf_keras)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.layers.Input((8,)), keras.layers.Dense(16, activation="relu"),
                             keras.layers.Dense(4)])


def strip_warnings(model):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stripped = tfsparse.sparsity.strip(model)
    return stripped, [str(w.message) for w in caught if str(w.message).startswith("strip:")]


def fit_one_step(model):
    model.compile(keras.optimizers.SGD(0.01), keras.losses.MeanSquaredError())
    x, y = np.random.rand(8, 8).astype("float32"), np.random.rand(8, 4).astype("float32")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[tfsparse.sparsity.UpdatePruningStep()])


# --- tfsparse.sparsity: one name each ----------------------------------------------------------


def test_sparsity_exports_one_name_per_thing():
    sparsity = tfsparse.sparsity
    names = sparsity.__all__
    assert len(names) == len(set(names))
    public = {name for name in dir(sparsity) if not name.startswith("_")}
    assert public == set(names), "dir(sparsity) shows names outside __all__ (a module or an alias)"
    values = [getattr(sparsity, name) for name in names]  # every name resolves
    assert not [n for n, v in zip(names, values) if isinstance(v, types.ModuleType)]
    by_object = {}
    for name, value in zip(names, values):
        by_object.setdefault(id(value), []).append(name)
    assert not [group for group in by_object.values() if len(group) > 1], "two names for one object"
    squeezed = [name.replace("_", "").lower() for name in names]
    assert len(squeezed) == len(set(squeezed)), "names differing only by underscores"
    for gone in ("oneshot", "lottery", "reinit", "stats", "structured", "methods", "one_shot_schedule"):
        assert not hasattr(sparsity, gone)
    for kept in ("one_shot", "lottery_ticket", "reinitialize", "prune", "strip", "apply_masks", "scope"):
        assert kept in names


# --- top-level names and PGD's defaults ---------------------------------------------------------


def test_autoattack_is_a_top_level_name_like_pgd():
    assert tfsparse.AutoAttack is tfsparse.attacks.AutoAttack
    assert {"AutoAttack", "PGD"} <= set(tfsparse.__all__) and "AutoAttack" in dir(tfsparse)
    assert tfsparse.AutoAttack(eps=0.1).eps == 0.1


def cli_config(name="evaluate"):
    """``configs/<name>.py``'s default config: the one home of ``scripts/<name>.py``'s defaults."""
    spec = importlib.util.spec_from_file_location(f"{name}_config", os.path.join(REPO, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, REPO)  # the config file imports configs.common
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(REPO)
    return module.get_config()


def test_pgd_defaults_are_the_clis():
    config = cli_config()
    (cli_pgd,) = tfsparse.evaluation.build_attacks(["pgd"], config.eps, config)  # what --attacks=pgd runs
    assert repr(tfsparse.PGD()) == repr(cli_pgd)
    assert tfsparse.PGD().params == cli_pgd.params
    # The documented numbers (Madry et al.'s MNIST PGD at the CLI's --eps).
    assert (tfsparse.PGD().eps, tfsparse.PGD().step_size, tfsparse.PGD().steps) == (0.1, 0.01, 40)
    assert tfsparse.PGD(eps=0.3).eps == 0.3


# --- strip without a training step --------------------------------------------------------------


def test_strip_warns_when_no_training_step_pruned_anything():
    model = tiny()
    stripped, messages = strip_warnings(tfsparse.sparsity.prune(model, 0.8))
    assert len(messages) == 1, messages
    assert "took no training step" in messages[0] and "pruned nothing yet" in messages[0]
    assert "UpdatePruningStep" in messages[0] and "apply_masks" in messages[0]
    assert "dense" in messages[0]  # names the layers
    # strip still computed the masks, as the warning says.
    assert tfsparse.weight_sparsity(stripped)["overall"] == pytest.approx(0.8, abs=0.02)


def test_strip_does_not_warn_after_a_training_step_or_apply_masks():
    model = tiny()
    trained = tfsparse.sparsity.prune(model, 0.8)
    fit_one_step(trained)
    stripped, messages = strip_warnings(trained)
    assert messages == [] and tfsparse.weight_sparsity(stripped)["overall"] == pytest.approx(0.8, abs=0.02)
    asked = tfsparse.sparsity.prune(model, 0.8)
    tfsparse.sparsity.apply_masks(asked)  # pruning without retraining, on purpose
    stripped, messages = strip_warnings(asked)
    assert messages == [] and tfsparse.weight_sparsity(stripped)["overall"] == pytest.approx(0.8, abs=0.02)
    held = tfsparse.sparsity.wrap_with_masks(model, {l.name: np.ones(l.kernel.shape, bool) for l in model.layers})
    assert strip_warnings(held)[1] == []  # a held mask is never recomputed: nothing pending


# --- a model saved while wrapped ----------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_model_saved_while_wrapped_loads_with_load_model(tmp_path, suffix):
    wrapped = tfsparse.sparsity.prune(tiny(), 0.5)
    fit_one_step(wrapped)
    path = str(tmp_path / f"wrapped{suffix}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf_keras's note that HDF5 is a legacy format
        wrapped.save(path)
    loaded = tfsparse.model_io.load_model(path)  # no sparsity.scope() needed
    x = np.random.rand(5, 8).astype("float32")
    np.testing.assert_allclose(loaded(x, training=False), wrapped(x, training=False), atol=1e-6)
    assert tfsparse.sparsity.has_pruning_wrappers(loaded)
    assert tfsparse.weight_sparsity(tfsparse.strip(loaded))["overall"] == pytest.approx(0.5, abs=0.02)
    with tfsparse.sparsity.scope():  # what README says for plain Keras loading
        again = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(again(x, training=False), wrapped(x, training=False), atol=1e-6)
