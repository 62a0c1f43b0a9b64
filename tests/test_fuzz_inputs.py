"""Fuzzed bad input (issue 30, item 8): one ``error:`` line and exit 2, never a traceback, a crash or a run.

The cases are generated the way a fuzzer would: every config key of every script's config ×
a value of the wrong type; every model format × {truncated, garbage, empty, misnamed}; data
files whose splits disagree; configs of the wrong kind. Flag and config cases run the real
script in a forked child of this process (TensorFlow is imported once, here), with the
script's pipeline replaced by a stub that exits 99: a case must be refused while the flags are
parsed and the config validated, before the pipeline is called; reaching the stub fails the
test. Model and data files are checked in process, through ``model_io`` and ``data.load``.
The fast tier keeps one case of each kind; ``--runslow`` runs every key.
"""

import importlib
import os
import pickle
import random
import runpy
import select
import signal
import sys
import time

import numpy as np
import pytest
from cli_helpers import REPO
from cli_helpers import error_line
from cli_helpers import run_script

sys.path[:0] = [REPO]  # configs/ (the fixtures read the config files as the scripts do)

import ml_collections  # noqa: E402

import tfsparse.cli  # noqa: E402,F401  (imported before any fork, so no child imports it)
import tfsparse.pipelines  # noqa: E402
import tfsparse.pipelines.validate  # noqa: E402,F401
from tfsparse import data  # noqa: E402
from tfsparse import model_io  # noqa: E402
from tfsparse.errors import ConfigError  # noqa: E402
from tfsparse.errors import DataError  # noqa: E402
from tfsparse.errors import RunDirError  # noqa: E402

# The pipeline entries each script calls; the forked child replaces them by a stub that exits 99.
PIPELINES = {
    "train.py": [("tfsparse.pipelines.train", "train_and_evaluate")],
    "sweep.py": [("tfsparse.pipelines.guo", "run_sweep"), ("tfsparse.pipelines.guo", "reevaluate_sweep")],
    "prune.py": [("tfsparse.pipelines.prune", "prune_saved_model")],
    "tune.py": [("tfsparse.pipelines.tune", "run_search")],
    "evaluate.py": [("tfsparse.pipelines.evaluate", "evaluate_model")],
    "export.py": [("tfsparse.pipelines.export", "export_model")],
    "experiment.py": [],  # tfsparse.pipelines.experiment is wrapped instead
    "launch_local.py": [],  # its own flags only: refused before it starts a process
}
REACHED = 99
for _module, _ in (entry for entries in PIPELINES.values() for entry in entries):
    importlib.import_module(_module)

# Each script, its default config file and the flags it requires ({tmp}: the test's folder).
SCRIPTS = {
    "train.py": ("configs/train.py", ["--workdir={tmp}/run"]),
    "sweep.py": ("configs/guo_mnist.py", ["--workdir={tmp}/run"]),
    "prune.py": ("configs/prune.py", ["--model={tmp}/model.h5", "--output={tmp}/out"]),
    "tune.py": ("configs/tune_rsr.py", ["--workdir={tmp}/run"]),
    "evaluate.py": ("configs/evaluate.py", ["--model={tmp}/model.h5", "--output={tmp}/out.json"]),
    "export.py": ("configs/export.py", ["--model={tmp}/model.h5", "--output={tmp}/out"]),
}


def _child(script, args):
    def reached(*_, **__):
        sys.stderr.write("reached the pipeline\n")
        sys.stderr.flush()
        os._exit(REACHED)

    for module, name in PIPELINES[script]:
        setattr(sys.modules[module], name, reached)
    choose = tfsparse.pipelines.experiment
    tfsparse.pipelines.experiment = lambda name: (choose(name), reached)[1]  # the name is still checked
    sys.path[:0] = [os.path.join(REPO, "scripts")]
    sys.argv = [os.path.join(REPO, "scripts", script), *args]
    runpy.run_path(sys.argv[0], run_name="__main__")


def run_forked(script, *args, timeout=120):
    """Runs ``scripts/SCRIPT`` with ``args`` in a forked child, its pipeline stubbed; ``(exit code, output)``.

    The child parses flags and configs only (no TensorFlow op runs before the stub), so it
    starts in a fraction of a second instead of a new interpreter's 5-10 s.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read)
            os.dup2(write, 1)
            os.dup2(write, 2)
            sys.stdout = os.fdopen(1, "w", buffering=1)  # not pytest's capture objects
            sys.stderr = os.fdopen(2, "w", buffering=1)
            _child(script, args)
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except BaseException:  # noqa: BLE001  (a traceback is what the test looks for)
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write)
    output, deadline = b"", time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([read], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                output += b"\n(timed out)"
                break
            chunk = os.read(read, 1 << 16)
            if not chunk:
                break
            output += chunk
    finally:
        os.close(read)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


class _Result:
    """``error_line`` reads ``.stderr``."""

    def __init__(self, stderr):
        self.stderr = stderr


def assert_one_line_refusal(code, output, *expected):
    assert code != REACHED, f"the bad value reached the pipeline:\n{output[-2000:]}"
    assert code == 2, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    line = error_line(_Result(output))
    for text in expected:
        assert text in line, line
    return line


def _leaves(config, prefix=""):
    for key, value in config.items():
        if isinstance(value, ml_collections.ConfigDict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def wrong_values(value):
    """Values of the wrong kind for a key holding ``value`` (none for a string: every value is one)."""
    if isinstance(value, bool):
        return ["maybe"]
    if isinstance(value, int):
        return ["abc", "1.5"]
    if isinstance(value, float):
        return ["abc", "inf", "nan"]
    if isinstance(value, (tuple, list)) and value:
        return ["(1, 2)", "None"] if isinstance(value[0], str) else ["abc", "('a', 'b')", "None"]
    if value is None:
        return ["5"]
    return []  # a string, or an empty tuple (no element type to be wrong about)


def _override_cases():
    cases = []
    for script, (path, _) in SCRIPTS.items():
        config = importlib.import_module("configs." + os.path.basename(path)[:-3]).get_config()
        first_of_kind = set()
        for key, value in _leaves(config):
            for bad in wrong_values(value):
                kind = (type(value).__name__, type(value[0]).__name__ if isinstance(value, (tuple, list)) else "")
                fast = kind not in first_of_kind
                first_of_kind.add(kind)
                cases.append(pytest.param(script, key, bad, id=f"{script}-{key}={bad}",
                                          marks=[] if fast else [pytest.mark.slow]))
    return cases


@pytest.mark.parametrize("script, key, bad", _override_cases())
def test_a_wrong_typed_override_of_any_key_is_one_line(tmp_path, script, key, bad):
    _, required = SCRIPTS[script]
    args = [a.format(tmp=tmp_path) for a in required]
    code, output = run_forked(script, f"--config.{key}={bad}", *args)
    assert_one_line_refusal(code, output, key.split(".")[-1])
    assert not os.listdir(tmp_path), "a refused override wrote files"


def _experiment_cases():
    cases = []
    for name in sorted(os.listdir(os.path.join(REPO, "configs"))):
        module = importlib.import_module("configs." + name[:-3]) if name.endswith(".py") else None
        if module is None or not hasattr(module, "get_config") or "experiment" not in module.get_config():
            continue
        for key, value in _leaves(module.get_config()):
            for bad in wrong_values(value)[:1]:
                cases.append(pytest.param(name, key, bad, id=f"{name}-{key}={bad}", marks=[pytest.mark.slow]))
    return cases


@pytest.mark.parametrize("config_file, key, bad", _experiment_cases())
def test_a_wrong_typed_override_of_any_experiment_key_is_one_line(tmp_path, config_file, key, bad):
    code, output = run_forked("experiment.py", f"--config=configs/{config_file}", f"--config.{key}={bad}",
                              f"--workdir={tmp_path}/run")
    assert_one_line_refusal(code, output, key.split(".")[-1])


@pytest.mark.parametrize("script, override, expected", [
    ("sweep.py", "--config.seeds=abc", "seeds holds int values, e.g. --config.seeds='(0, 1, 2)'"),
    ("sweep.py", "--config.seeds=(0,None)", "seeds holds int values"),
    ("train.py", "--config.train.learning_rate=inf", "train.learning_rate must be a finite number"),
    ("evaluate.py", "--config.attack_names=(1,2)", "attack_names holds str values"),
])
def test_known_bad_overrides_say_what_to_write(tmp_path, script, override, expected):
    args = [a.format(tmp=tmp_path) for a in SCRIPTS[script][1]]
    assert_one_line_refusal(*run_forked(script, override, *args), expected)


def test_right_typed_overrides_still_reach_the_pipeline(tmp_path):
    """The checks refuse only what is wrong: ints in a float tuple, a new tuple, a fraction, the variants."""
    run = f"--workdir={tmp_path}/run"
    assert run_forked("sweep.py", "--config.seeds=(3,)", "--config.eval.fgs_eps=8/255", run)[0] == REACHED
    assert run_forked("tune.py", "--config.search.sparsities=(0, 0.5)", run)[0] == REACHED
    assert run_forked("evaluate.py", "--config.attack_names=('fgsm',)", f"--model={tmp_path}/m.h5")[0] == REACHED


WRONG_KIND = [
    ("experiment.py", "configs/train.py", "is no experiment config"),
    ("experiment.py", "configs/prune.py", "is no experiment config"),
    ("sweep.py", "configs/train.py", "is no experiment config"),
    ("sweep.py", "configs/wang_mnist.py:quick", "sweep.py runs only guo_progressive_pruning"),
    ("train.py", "configs/guo_mnist.py:quick", "not of train.py; run it with scripts/experiment.py"),
    ("evaluate.py", "configs/train.py", "lacks the sections ['attacks']"),
    ("prune.py", "configs/train.py", "lacks the sections ['prune']"),
    ("export.py", "configs/prune.py", "lacks the sections ['export', 'robustness']"),
    ("tune.py", "configs/train.py", "lacks the sections ['search']"),
]


@pytest.mark.parametrize("script, config_file, expected", WRONG_KIND, ids=[f"{s}-{c}" for s, c, _ in WRONG_KIND])
def test_a_config_of_the_wrong_kind_is_one_line(tmp_path, script, config_file, expected):
    args = [a.format(tmp=tmp_path) for a in SCRIPTS.get(script, (None, ["--workdir={tmp}/run"]))[1]]
    assert_one_line_refusal(*run_forked(script, f"--config={config_file}", *args), expected)


def test_configs_of_the_right_kind_still_run(tmp_path):
    """Another config of the same kind passes: guo_linear for the sweep, any experiment, a user's extended copy."""
    run = f"--workdir={tmp_path}/run"
    assert run_forked("sweep.py", "--config=configs/guo_linear.py:quick", run)[0] == REACHED
    assert run_forked("experiment.py", "--config=configs/guo_activation_l1.py:quick", run)[0] == REACHED
    own = tmp_path / "mine.py"
    own.write_text("from configs import train\n\n\ndef get_config(arg=None):\n    config = train.get_config(arg)\n"
                   "    config.note = 'mine'\n    return config\n")
    assert run_forked("train.py", f"--config={own}", run)[0] == REACHED


def test_launch_local_passes_a_bad_flag_back_as_one_line(tmp_path):
    """Flags through the launcher: its own bad flags, and the command's one-line refusal (exit 2, once per worker)."""
    code, output = run_forked("launch_local.py", "--num_workers=abc", "--", "scripts/train.py", f"--workdir={tmp_path}/r")
    assert_one_line_refusal(code, output, "--num_workers")
    result = run_script("launch_local.py", "--num_workers=1", "--timeout=120", "--", "scripts/sweep.py",
                        "--config.seeds=abc", f"--workdir={tmp_path}/run")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert "seeds holds int values" in result.stdout + result.stderr
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# Model files: every format x {truncated, garbage, empty, misnamed}.

@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    from tfsparse import models as zoo
    from tfsparse.compat import tf

    folder = tmp_path_factory.mktemp("model_files")
    model = zoo.get("lenet300_100")(10, (28, 28, 1))
    model.save(folder / "good.h5")
    model.save(folder / "good.keras")
    model.save(folder / "good_saved_model")
    (folder / "good.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return folder


def _damage(kind, blob, seed=0):
    if kind == "truncated":
        return blob[: len(blob) // 2]
    if kind == "garbage":
        return random.Random(seed).randbytes(4096)
    if kind == "empty":
        return b""
    if kind == "flipped":  # 200 inverted bytes near the start: offsets and tables of a flatbuffer
        return blob[:100] + bytes(b ^ 0xFF for b in blob[100:300]) + blob[300:]
    raise ValueError(kind)


FILE_CASES = [(fmt, kind) for fmt in ("h5", "keras", "tflite") for kind in ("truncated", "garbage", "empty")]
FILE_CASES += [("keras", "flipped"), ("tflite", "flipped")]


@pytest.mark.parametrize("fmt, kind", FILE_CASES, ids=[f"{f}-{k}" for f, k in FILE_CASES])
def test_a_damaged_model_file_is_one_line_naming_it(model_files, tmp_path, fmt, kind):
    path = tmp_path / f"{kind}.{fmt}"
    path.write_bytes(_damage(kind, (model_files / f"good.{fmt}").read_bytes()))
    loaders = [model_io.check_model_file] if kind == "flipped" and fmt == "tflite" else [model_io.load_model]
    if fmt != "tflite":
        loaders.append(model_io.load_keras_model)
    for load in loaders:
        with pytest.raises(ConfigError) as raised:
            load(str(path))
        message = str(raised.value)
        assert str(path) in message and "\n" not in message, message


MISNAMED = [("keras", "h5", "rename it to end in .keras"),
            ("tflite", "h5", "rename it to end in .tflite"), ("h5", "tflite", "rename it to end in .h5"),
            ("keras", "tflite", "rename it to end in .keras")]


@pytest.mark.parametrize("content, name, expected", MISNAMED, ids=[f"{c}-as-{n}" for c, n, _ in MISNAMED])
def test_a_model_file_with_the_wrong_extension_says_which_to_use(model_files, tmp_path, content, name, expected):
    path = tmp_path / f"model.{name}"
    path.write_bytes((model_files / f"good.{content}").read_bytes())
    with pytest.raises(ConfigError, match=expected):
        model_io.load_model(str(path))


def test_an_h5_file_named_keras_still_loads(model_files, tmp_path):
    """tf_keras reads HDF5 under a .keras name, so that one is no error."""
    path = tmp_path / "model.keras"
    path.write_bytes((model_files / "good.h5").read_bytes())
    assert model_io.load_keras_model(str(path)).count_params() > 0


SAVED_MODEL_DAMAGE = ["pb_truncated", "pb_garbage", "pb_empty", "variables_truncated"]


@pytest.mark.parametrize("kind", SAVED_MODEL_DAMAGE)
def test_a_damaged_saved_model_is_one_line_naming_it(model_files, tmp_path, kind):
    import shutil

    path = tmp_path / "saved_model"
    shutil.copytree(model_files / "good_saved_model", path)
    target = path / "saved_model.pb"
    if kind == "variables_truncated":
        target = next((path / "variables").glob("variables.data-*"))
    target.write_bytes(_damage(kind.split("_")[1], target.read_bytes()))
    for load in (model_io.load_model, model_io.load_keras_model):
        with pytest.raises(ConfigError) as raised:
            load(str(path))
        assert str(path) in str(raised.value) and "\n" not in str(raised.value), str(raised.value)


def test_the_good_files_pass_the_check(model_files):
    for name in ("good.h5", "good.keras", "good.tflite", "good_saved_model"):
        model_io.check_model_file(str(model_files / name))
    assert model_io.load_model(str(model_files / "good.tflite")).input_shape == (None, 28, 28, 1)


@pytest.mark.slow
def test_no_damaged_flatbuffer_crashes_the_interpreter(model_files, tmp_path):
    """60 seeded corruptions of a .tflite file, loaded in one child: before the check, a third of them
    were segmentation faults of the TFLite interpreter (91 of 300); now each is a ConfigError or loads."""
    blob = (model_files / "good.tflite").read_bytes()
    rng = random.Random(0)
    paths = []
    for trial in range(60):
        damaged = bytearray(blob)
        start = rng.randrange(len(damaged) - 200)
        for i in range(start, start + rng.randrange(1, 200)):
            damaged[i] ^= 0xFF
        path = tmp_path / f"fuzz{trial}.tflite"
        path.write_bytes(bytes(damaged))
        paths.append(str(path))
    code = ("import sys, numpy as np\nimport tfsparse\nfrom tfsparse import model_io\nfrom tfsparse.errors import "
            "ConfigError\nfor path in sys.argv[1:]:\n    try:\n        model = model_io.load_model(path)\n"
            "        model(np.zeros((2, 28, 28, 1), np.float32))\n    except (ConfigError, Exception):\n        pass\n"
            "print('survived')\n")
    import subprocess

    from cli_helpers import ENV

    result = subprocess.run([sys.executable, "-c", code, *paths], env=ENV, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0 and "survived" in result.stdout, (result.returncode, result.stderr[-2000:])


@pytest.mark.slow
def test_evaluate_on_a_damaged_tflite_file_exits_2(model_files, tmp_path):
    """The CLI path: the flipped flatbuffer that crashed the interpreter is one line."""
    path = tmp_path / "flipped.tflite"
    path.write_bytes(_damage("flipped", (model_files / "good.tflite").read_bytes()))
    result = run_script("evaluate.py", f"--model={path}", "--attacks=square", "--num_examples=10")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "is damaged or not a TFLite flatbuffer" in error_line(result)


# ---------------------------------------------------------------------------------------------
# Data files whose splits disagree, and damaged data files.

def _x(n, shape=(28, 28)):
    return np.random.default_rng(n).integers(0, 256, (n, *shape), dtype=np.uint8)


def _y(n, value=None):
    return np.full(n, value, np.int64) if value is not None else np.arange(n, dtype=np.int64) % 10


SPLITS = {
    "train lengths": (dict(x_train=_x(50), y_train=_y(40), x_test=_x(20), y_test=_y(20)),
                      "its train split has 50 images but 40 labels"),
    "test lengths": (dict(x_train=_x(50), y_train=_y(50), x_test=_x(20), y_test=_y(25)),
                     "its test split has 20 images but 25 labels"),
    "train vs test shape": (dict(x_train=_x(50), y_train=_y(50), x_test=_x(20, (28, 28, 3)), y_test=_y(20)),
                            "its train images are (28, 28) but its test images are (28, 28, 3)"),
    "labels above the classes": (dict(x_train=_x(50), y_train=_y(50, 12), x_test=_x(20), y_test=_y(20)),
                                 "range over [12, 12] but num_classes=10"),
    "negative labels": (dict(x_train=_x(50), y_train=_y(50), x_test=_x(20), y_test=_y(20, -1)),
                        "range over [-1, -1]"),
}


@pytest.mark.parametrize("case", list(SPLITS))
def test_splits_that_disagree_are_one_data_error(tmp_path, case):
    arrays, expected = SPLITS[case]
    path = tmp_path / "mnist.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError) as raised:
        data.load("mnist", str(path))
    assert expected in str(raised.value) and "\n" not in str(raised.value), str(raised.value)


@pytest.mark.parametrize("kind", ["truncated", "empty", "garbage"])
def test_a_damaged_npz_is_one_data_error_naming_it(tmp_path, kind):
    good = tmp_path / "good.npz"
    np.savez(good, x_train=_x(50), y_train=_y(50), x_test=_x(20), y_test=_y(20))
    path = tmp_path / "mnist.npz"
    path.write_bytes(_damage(kind, good.read_bytes()))
    with pytest.raises(DataError, match="is not a readable .npz file"):
        data.load("mnist", str(path))


def test_a_truncated_idx_or_cifar_file_is_one_data_error_naming_it(tmp_path):
    import gzip

    idx = tmp_path / "idx"
    idx.mkdir()
    for stem, array in (("train-images-idx3-ubyte", _x(50)), ("train-labels-idx1-ubyte", _y(50).astype(np.uint8)),
                        ("t10k-images-idx3-ubyte", _x(20)), ("t10k-labels-idx1-ubyte", _y(20).astype(np.uint8))):
        raw = gzip.compress(bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
                            + array.tobytes())
        (idx / f"{stem}.gz").write_bytes(raw[: len(raw) // 2] if stem.startswith("t10k-images") else raw)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz cannot be read"):
        data.load("mnist", str(idx))
    cifar = tmp_path / "cifar" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    batch = pickle.dumps({b"data": _x(30, (3072,)), b"labels": list(_y(30))})
    (cifar / "data_batch_1").write_bytes(batch[: len(batch) // 2])
    (cifar / "test_batch").write_bytes(pickle.dumps({b"data": _x(10, (3072,)), b"labels": list(_y(10))}))
    with pytest.raises(DataError, match="data_batch_1 is not a readable CIFAR pickle batch"):
        data.load("cifar10", str(tmp_path / "cifar"))
    (cifar / "data_batch_1").write_bytes(pickle.dumps({b"x": 1}))
    with pytest.raises(DataError, match=r"lacks the entries \['data', 'labels'\]"):
        data.load("cifar10", str(tmp_path / "cifar"))


# ---------------------------------------------------------------------------------------------
# Output locations that refuse the write even though os.access says yes (root).

def test_an_output_place_that_refuses_writes_is_found_before_any_work(tmp_path):
    from tfsparse.pipelines._run import check_output_file
    from tfsparse.pipelines._run import check_writable

    from tfsparse import results

    if not os.path.isdir("/sys") or results.probe_writable("/sys") is None:
        pytest.skip("needs /sys, where no one (root included) may create files")
    for check in (check_writable, check_output_file):
        with pytest.raises(RunDirError, match="cannot write in /sys"):
            check("/sys/tfsparse_run/results.json")
    check_output_file(str(tmp_path / "out.json"))  # a writable place passes and keeps nothing
    assert not os.listdir(tmp_path)


# ---------------------------------------------------------------------------------------------
# Damaged checkpoints on --resume.

@pytest.mark.parametrize("part", ["index", "data", "state"])
def test_a_damaged_checkpoint_is_found_before_a_resume(tmp_path, part):
    from tfsparse.compat import tf
    from tfsparse.pipelines._run import check_checkpoints

    folder = tmp_path / "checkpoints"
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(w=tf.Variable(np.arange(4096, dtype=np.float32))),
                                         str(folder), max_to_keep=2)
    manager.save()
    check_checkpoints(str(tmp_path))  # a whole one passes
    if part == "state":
        (folder / "checkpoint").write_text('model_checkpoint_path: "ckpt-9"\n')
    else:
        target = next(folder.glob("ckpt-1.index" if part == "index" else "ckpt-1.data-*"))
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    with pytest.raises(RunDirError, match="is damaged .*start again with a new --workdir") as raised:
        check_checkpoints(str(tmp_path))
    assert "\n" not in str(raised.value)


@pytest.mark.slow
def test_resume_from_a_truncated_checkpoint_is_one_line(tmp_path):
    import json

    args = ["--num_train=300", "--epochs=2", "--config.eval.num_examples=20", "--config.eval.epoch_examples=0",
            "--config.data.num_test=50", f"--workdir={tmp_path}/run"]
    assert run_script("train.py", *args).returncode == 0
    state = json.loads((tmp_path / "run" / "results.json").read_text())
    state.update(status="interrupted", last_completed="epoch 1")  # as if killed after its first epoch
    (tmp_path / "run" / "results.json").write_text(json.dumps(state))
    for data_file in (tmp_path / "run" / "checkpoints").glob("ckpt-*.data-*"):
        data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 2])
    result = run_script("train.py", *args, "--resume")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "is damaged" in error_line(result) and "Traceback" not in result.stderr
