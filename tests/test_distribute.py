"""tf.distribute from the config: mirrored replicas, localhost multi-worker clusters, mixed precision.

Everything runs the real strategies: ``MirroredStrategy`` over two virtual CPU devices (in a
subprocess: devices must be split before TensorFlow initialises them) and
``MultiWorkerMirroredStrategy`` over worker processes started by ``scripts/launch_local.py``
with gRPC on localhost. Determinism for the equal-weights checks: the data order is the seeded
shuffle every worker computes alike (Keras then gives worker/replica ``i`` the ``i``-th slice of
each global batch), and PGD starts from ``x`` (``pgd.random_start=False``): a random start is
drawn per batch *shape*, so with a start the replicas' draws differ from one device's (same
distribution, other numbers).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from cli_helpers import ENV
from cli_helpers import REPO
from cli_helpers import script_command
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.errors import ConfigError
from tfsparse.pipelines.validate import validate
from tfsparse.training import AdversarialModel
from tfsparse.training import float32_logits
from tfsparse.training import precision_policy
from tfsparse.training import strategy_from_config

# A PGD run small enough for seconds per worker: 256 images, global batch 64, 4 steps, PGD-3.
TINY_PGD = [
    "--model=lenet300_100", "--num_train=256", "--epochs=1", "--training=pgd", "--eps=0.1",
    "--config.pgd.steps=3", "--config.pgd.eval_steps=3", "--config.pgd.eval_examples=64",
    "--config.pgd.random_start=False", "--config.eval.epoch_examples=0", "--config.data.num_test=100",
    "--config.verbose=0",
]


def train_config(**sections):
    """configs/train.py:lenet with TINY_PGD's values, plus ``{"a.b": value}`` overrides."""
    sys.path.insert(0, REPO)
    from configs import train as train_configs

    config = train_configs.get_config("lenet")
    config.model.name = "lenet300_100"
    config.data.num_train, config.data.num_test = 256, 100
    config.training, config.verbose = "pgd", 0
    config.pgd.update({"eps": 0.1, "steps": 3, "eval_steps": 3, "eval_examples": 64, "random_start": False})
    config.eval.epoch_examples = 0
    config.train.update({"epochs": 1.0, "steps": 0})
    config.adversarial_train.update({"epochs": 1.0, "steps": 0})
    for key, value in sections.items():
        section, _, name = key.rpartition(".")
        (config[section] if section else config)[name] = value
    return config


def final_weights(workdir):
    """The model's weights in the run's last epoch checkpoint, by checkpoint key."""
    path = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    return {name: tf.train.load_variable(path, name) for name, _ in tf.train.list_variables(path)
            if name.startswith("model/") and "layer_with_weights" in name and "OPTIMIZER_SLOT" not in name}


def assert_same_weights(a, b):
    assert sorted(a) == sorted(b) and len(a) >= 6
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_config_words_are_validated():
    config = train_config()
    assert config.distribute == "none" and config.adversarial_train.mixed_precision is False
    validate(config)
    config.distribute = "gpus"
    with pytest.raises(ConfigError, match=r"^distribute 'gpus' is unknown; choose from \('none', 'mirrored'"):
        validate(config)
    with pytest.raises(TypeError, match="mixed_precision"):  # ml_collections keeps it a bool
        config.train.mixed_precision = "yes"
    assert strategy_from_config("none") is tf.distribute.get_strategy()
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        os.environ.pop("TF_CONFIG", None)
        strategy_from_config("multi_worker")
    with pytest.raises(ConfigError, match="^distribute=tpu: no TPU found"):
        strategy_from_config("tpu")


_MIRRORED = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tfsparse
    from tfsparse.compat import keras, tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[1])
    from test_distribute import final_weights, train_config
    from tfsparse import sparsity
    from tfsparse.errors import ConfigError
    from tfsparse.pipelines.train import train_and_evaluate
    from tfsparse.training import AdversarialModel, per_replica_batch, strategy_from_config, train

    strategy = strategy_from_config("mirrored")
    out = {"replicas": strategy.num_replicas_in_sync}
    try:
        per_replica_batch(65, strategy, "train.batch_size")
    except ConfigError as error:
        out["odd_batch"] = str(error)

    # tfmot's pruning step after 6 global steps, on each replica.
    rng = np.random.RandomState(0)
    x, y = rng.rand(64, 4, 4, 1).astype("float32"), rng.randint(0, 3, 64)
    section = train_config().train
    section.update({"batch_size": 16, "steps": 6, "epochs": 0.0, "lr_schedule": "constant"})
    with section.unlocked():
        section.jit_compile = False
    with strategy.scope():
        dense = keras.Sequential([keras.layers.Flatten(input_shape=(4, 4, 1)), keras.layers.Dense(8),
                                  keras.layers.Dense(3)])
        pruned = sparsity.prune(keras.Model(dense.inputs, dense.outputs), 0.5)
        train(pruned, x, y, section)
        try:
            AdversarialModel(pruned, eps=0.1, step_size=0.05, steps=2)
        except ValueError as error:
            out["pruned_pgd"] = str(error)
    out["iterations"] = int(pruned.optimizer.iterations.numpy())
    out["pruning_steps"] = [[int(v.numpy()) for v in strategy.experimental_local_results(layer.pruning_step)]
                            for layer in pruned.layers if hasattr(layer, "pruning_step")]

    # The train pipeline, mirrored over the 2 devices and on one device, same global batch:
    # PGD (Adam) and clean training (SGD with the Caffe schedule and weight decay).
    runs = {}
    for training in ("pgd", "clean"):
        for word in ("mirrored", "none"):
            workdir = f"{sys.argv[2]}/{training}_{word}"
            record = train_and_evaluate(train_config(distribute=word, training=training), workdir,
                                        log=lambda *_: None)
            record["weights"] = {k: v.tolist() for k, v in final_weights(workdir).items()}
            runs[f"{training}_{word}"] = record
    out["runs"] = runs
    print(json.dumps(out))
    """
)


def _run_split_cpu(script, tmp_path):
    """Runs ``script`` in a fresh interpreter (the CPU split into 2 devices) and returns its JSON line."""
    proc = subprocess.run([sys.executable, "-c", script, os.path.join(REPO, "tests"), str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=REPO, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_mirrored_replicas_step_like_one_device(tmp_path):
    """MirroredStrategy over 2 virtual CPUs: pruning step, batch rule, the pgd and clean pipelines' weights."""
    out = _run_split_cpu(_MIRRORED, tmp_path)
    assert out["replicas"] == 2
    assert out["odd_batch"].startswith("train.batch_size 65 is the global batch and must be a multiple of the 2")
    # One increment per global optimizer step on every replica (tfmot's step is mirrored).
    assert out["iterations"] == 6 and out["pruning_steps"] == [[6, 6], [6, 6]]
    assert "cannot run under a tf.distribute strategy" in out["pruned_pgd"]
    for training in ("pgd", "clean"):
        mirrored, single = out["runs"][f"{training}_mirrored"], out["runs"][f"{training}_none"]
        assert mirrored["status"] == single["status"] == "complete"
        assert (mirrored["replicas"], single["replicas"]) == (2, 1)
        assert mirrored["train_steps"] == single["train_steps"] == 4  # global steps: 256 / 64
        assert_same_weights({k: np.array(v) for k, v in mirrored["weights"].items()},
                            {k: np.array(v) for k, v in single["weights"].items()})
        assert mirrored["clean_accuracy"] == pytest.approx(single["clean_accuracy"], abs=0.011)


def sweep_config(**values):
    """configs/guo_linear.py:quick cut to seconds: one seed, 256 images, 8 dense steps, 1 round of 4 steps, plus ``values``."""
    sys.path.insert(0, REPO)
    from configs import guo_linear

    config = guo_linear.get_config("quick")
    config.seeds = (0,)
    config.data.num_train, config.data.num_test = 256, 64
    config.train.update({"steps": 8, "epochs": 0.0})
    config.prune.update({"rounds": 1, "retrain_steps": 4})
    config.eval.update({"num_examples": 32, "deepfool_max_iter": 5})
    config.update(values)
    return config


_MIRRORED_SWEEP = textwrap.dedent(
    """
    import json, sys
    import h5py
    import tfsparse
    from tfsparse.compat import tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[1])
    from test_distribute import sweep_config
    from tfsparse.pipelines.guo import run_sweep

    out = {}
    for word in ("mirrored", "none"):
        workdir = run_sweep(sweep_config(distribute=word), f"{sys.argv[2]}/{word}", log=lambda *_: None)
        state = json.load(open(f"{workdir}/results.json"))
        state["weights"] = []
        for round_index in (0, 1):  # the kept weights of each round: {"dense/vars/0": kernel, ...}
            arrays = {}  # (a file saved from the trained model also holds its optimizer's and metrics' state)
            with h5py.File(f"{workdir}/checkpoints/seed0/round{round_index}.weights.h5", "r") as handle:
                handle["layers"].visititems(lambda name, item: arrays.update(
                    {name: item[()].tolist()} if isinstance(item, h5py.Dataset) else {}))
            state["weights"].append(arrays)
        out[word] = state
    print(json.dumps(out))
    """
)


# Slow tier: mirrored stepping stays fast in test_mirrored_replicas_step_like_one_device.
@pytest.mark.slow
def test_mirrored_sweep_prunes_and_measures_like_one_device(tmp_path):
    """The guo pipeline (dense training, a pruning round's retraining) over 2 virtual CPUs = one device."""
    out = _run_split_cpu(_MIRRORED_SWEEP, tmp_path)
    mirrored, single = out["mirrored"], out["none"]
    assert mirrored["status"] == single["status"] == "complete"
    assert [r["round"] for r in mirrored["records"]] == [r["round"] for r in single["records"]] == [0, 1]
    for a, b in zip(mirrored["records"], single["records"]):
        for key in ("target_sparsity", "sparsity", "clean_accuracy", "r_inf"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), key
        assert a["r2"] == pytest.approx(b["r2"], rel=1e-4)
    assert mirrored["records"][1]["sparsity"] == pytest.approx(1 / 3, abs=0.01)  # the round pruned
    for a, b in zip(mirrored["weights"], single["weights"]):
        assert sorted(a) == sorted(b) == ["dense/vars/0", "dense/vars/1"]  # the one logit's w, b
        for name in a:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_two_localhost_workers_train_like_one(tmp_path):
    """The real multi-worker path: launch_local.py, two train.py workers (gRPC on localhost)."""
    from tfsparse.pipelines.train import train_and_evaluate

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    workdir = tmp_path / "two"
    proc = subprocess.run(
        script_command("launch_local.py", "--num_workers=2", "--timeout=240", "--grace=5", "--",
                       "scripts/train.py", *TINY_PGD, "--config.distribute=multi_worker", f"--workdir={workdir}"),
        cwd=REPO, env=dict(ENV, TMPDIR=str(scratch)), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.stdout.splitlines()[-2:] == ["worker 0 (chief): exit 0", "worker 1: exit 0"]
    assert "[worker 1] distribute=multi_worker: 2 replicas, global batch 64 (worker:" in proc.stdout
    # Only the chief wrote the run directory; the worker's checkpoint scratch folders are gone.
    assert sorted(os.listdir(workdir)) == ["checkpoints", "config.json", "history.csv", "results.json",
                                           "saved_model", "tensorboard"]
    assert not [name for name in os.listdir(scratch) if name.startswith("tfsparse-")]
    two = json.loads((workdir / "results.json").read_text())
    one = train_and_evaluate(train_config(), str(tmp_path / "one"), log=lambda *_: None)
    assert two["status"] == one["status"] == "complete" and two["train_steps"] == one["train_steps"] == 4
    assert_same_weights(final_weights(str(workdir)), final_weights(str(tmp_path / "one")))
    assert two["clean_accuracy"] == pytest.approx(one["clean_accuracy"], abs=0.011)


def test_mixed_precision_keeps_attacks_in_float32():
    """bfloat16 compute on CPU: finite training loss, PGD examples inside the ε-ball and [0, 1]."""
    from tfsparse import models

    rng = np.random.RandomState(0)
    x, y = rng.rand(64, 28, 28, 1).astype("float32"), rng.randint(0, 10, 64)
    with precision_policy(True) as policy:
        inner = float32_logits(models.get("lenet5")(10, (28, 28, 1), 0.13, 0.31))
        model = AdversarialModel(inner, eps=0.1, step_size=0.05, steps=5, random_start=True)
        model.compile(keras.optimizers.SGD(0.01),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert policy == "mixed_bfloat16" and keras.mixed_precision.global_policy().name == "float32"
    assert inner.layers[2].compute_dtype == "bfloat16" and inner.layers[2].variable_dtype == "float32"
    assert inner.output.dtype == tf.float32
    assert np.all(np.isfinite(history.history["loss"]))
    x_adv = model.perturb(tf.constant(x), y, tf.constant(0, tf.int64), eps=0.1)
    assert x_adv.dtype == tf.float32
    x_adv = x_adv.numpy()
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6 and x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert np.abs(x_adv - x).max() > 0.09  # the attack moved to the sphere, it did not stall
    # float16 (the GPU choice) is loss-scaled: Keras wraps the optimizer when compiling.
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        half = models.get("lenet300_100")(10, (28, 28, 1), 0.13, 0.31)
        half.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert isinstance(half.optimizer, keras.mixed_precision.LossScaleOptimizer)


def _launcher(args, scratch):
    # TMPDIR: a worker killed while saving leaves its scratch folder; keep it in the test's tmp_path.
    return subprocess.Popen(script_command("launch_local.py", *args), cwd=REPO, env=dict(ENV, TMPDIR=str(scratch)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _worker_pid(launcher_pid, index):
    """The pid of the launcher's child whose TF_CONFIG has task index ``index``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/environ", "rb") as handle:
                env = dict(item.split(b"=", 1) for item in handle.read().split(b"\0") if b"=" in item)
        except OSError:
            continue
        if parent == launcher_pid and b"TF_CONFIG" in env and json.loads(env[b"TF_CONFIG"])["task"]["index"] == index:
            return int(entry)
    return None


@pytest.mark.slow
def test_a_killed_worker_fails_the_run_cleanly_and_it_resumes(tmp_path):
    """SIGKILL worker 1 after epoch 1: the launcher stops the chief and fails; no half run; --resume ends it."""
    import signal
    import time

    workdir = tmp_path / "run"
    args = ["--num_workers=2", "--timeout=200", "--grace=5", "--", "scripts/train.py", *TINY_PGD,
            "--num_train=1024", "--epochs=4", "--config.distribute=multi_worker", f"--workdir={workdir}"]
    launcher = _launcher(args, tmp_path)
    try:
        deadline = time.monotonic() + 150
        while True:
            assert launcher.poll() is None and time.monotonic() < deadline, "the run ended before epoch 1"
            try:
                state = json.loads((workdir / "results.json").read_text())
            except (OSError, ValueError):
                state = {}
            if state.get("last_completed") == "epoch 1":
                break
            time.sleep(0.05)
        os.kill(_worker_pid(launcher.pid, 1), signal.SIGKILL)
        output, _ = launcher.communicate(timeout=150)
    finally:
        if launcher.poll() is None:  # SIGTERM: the launcher stops its workers before it exits
            launcher.terminate()
            launcher.wait(timeout=60)
    assert launcher.returncode == 1, output[-3000:]
    assert "worker 1: killed by signal 9" in output and "worker 0 (chief): " in output
    state = json.loads((workdir / "results.json").read_text())
    assert state["status"] != "complete" and state["last_completed"].startswith("epoch")
    assert not (workdir / "saved_model").exists() and "clean_accuracy" not in state
    resumed = _launcher(args + ["--resume"], tmp_path)
    try:
        output, _ = resumed.communicate(timeout=280)
    finally:
        if resumed.poll() is None:
            resumed.terminate()
            resumed.wait(timeout=60)
    assert resumed.returncode == 0, output[-3000:]
    state = json.loads((workdir / "results.json").read_text())
    assert state["status"] == "complete" and state["resumed"] == 1 and state["train_steps"] == 64


@pytest.mark.slow  # three TensorFlow processes, ~60 s; the one-process search is in tests/test_tuning.py
def test_keras_tuner_chief_and_two_workers_share_the_trials(tmp_path):
    """scripts/tune.py under launch_local.py --keras_tuner: 4 trials over 2 workers, one table by the chief."""
    workdir = tmp_path / "tune"
    proc = subprocess.run(
        script_command("launch_local.py", "--keras_tuner", "--num_workers=2", "--timeout=400", "--grace=5", "--",
                       "scripts/tune.py", "--config=configs/tune_rsr.py:quick", "--max_trials=4",
                       f"--workdir={workdir}", "--config.model.name=lenet300_100", "--config.data.num_train=256",
                       "--config.data.num_test=32", "--config.adversarial_train.batch_size=64",
                       "--config.rsr.steps=2", "--config.pgd.eval_steps=2", "--config.search.eval_examples=32"),
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=500,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.stdout.splitlines()[-3:] == ["chief: exit 0", "tuner0: exit 0", "tuner1: exit 0"]
    done = [line.split()[-1] for line in proc.stdout.splitlines() if " done by tuner" in line]
    assert len(done) == 4 and set(done) == {"tuner0", "tuner1"}, done
    with open(workdir / "trials.csv") as handle:
        rows = handle.read().strip().splitlines()
    assert len(rows) == 5  # header + one row per trial
    assert json.loads((workdir / "results.json").read_text())["status"] == "complete"
    assert sorted(os.listdir(workdir / "tuner")) == ["chief.json", "oracle.json", "trial_0", "trial_1", "trial_2",
                                                     "trial_3"]


_SHARDED_EVAL = textwrap.dedent(
    """
    import json, os, sys
    import tfsparse
    from tfsparse.compat import tf
    if sys.argv[3] == "mirrored":  # before TensorFlow initialises its devices
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[1])
    from test_distribute import eval_setup
    from tfsparse.evaluation import evaluate
    from tfsparse.training import is_chief, strategy_from_config

    strategy = strategy_from_config(sys.argv[3])
    model, x, y, suite = eval_setup(sys.argv[2])
    report = evaluate(model, x, y, suite, batch_size=64, seed=3, strategy=strategy)
    if is_chief(strategy):
        print("REPORT " + json.dumps({"replicas": strategy.num_replicas_in_sync, "report": report}))
    """
)


def eval_setup(weights):
    """A briefly trained LeNet-300-100 (weights from ``weights``), 250 test images, FGS, PGD, DeepFool."""
    from tfsparse import attacks
    from tfsparse import data
    from tfsparse import models

    dataset = data.load("mnist", num_train=512, num_test=250)
    keras.utils.set_random_seed(0)
    model = models.get("lenet300_100")(10, dataset.input_shape, dataset.mean, dataset.std)
    if not os.path.exists(weights):
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(dataset.x_train, dataset.y_train, batch_size=64, epochs=2, shuffle=False, verbose=0)
        model.save_weights(weights)
    model.load_weights(weights)
    suite = [attacks.FGSM(eps=0.1), attacks.PGD(eps=0.1, step_size=0.02, steps=10), attacks.DeepFool(max_iter=10)]
    return model, dataset.x_test, dataset.y_test, suite


def _without_seconds(report):
    return {**report, "attacks": {k: {n: v for n, v in e.items() if n != "seconds"}
                                  for k, e in report["attacks"].items()}}


@pytest.mark.slow  # three TensorFlow processes, ~60 s; mirrored sharding stays in the fast tier
def test_sharded_evaluation_equals_the_single_process_report(tmp_path):
    """Attacks sharded over 2 virtual CPUs (MirroredStrategy) and over 2 localhost workers (MWMS)."""
    import io

    from tfsparse import launch
    from tfsparse.evaluation import evaluate

    weights = str(tmp_path / "lenet.h5")
    model, x, y, suite = eval_setup(weights)
    single = _without_seconds(json.loads(json.dumps(evaluate(model, x, y, suite, batch_size=64, seed=3))))
    assert 0.5 < single["clean_accuracy"] and 0 < single["attacks"]["pgd"]["accuracy"] < single["clean_accuracy"]
    tests = os.path.join(REPO, "tests")
    proc = subprocess.run([sys.executable, "-c", _SHARDED_EVAL, tests, weights, "mirrored"], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = io.StringIO()
    outcomes = launch.launch([sys.executable, "-c", _SHARDED_EVAL, tests, weights, "multi_worker"],
                             launch.worker_tasks(2), timeout=300, grace=5, cwd=REPO, out=out)
    assert all(o.ok for o in outcomes), out.getvalue()[-3000:]
    for text, replicas in ((proc.stdout, 2), (out.getvalue(), 2)):
        (line,) = [line for line in text.splitlines() if "REPORT " in line]  # the chief's only
        sharded = json.loads(line.split("REPORT ", 1)[1])
        assert sharded["replicas"] == replicas
        assert _without_seconds(sharded["report"]) == single


def test_device_check_refuses_an_unknown_option():
    proc = subprocess.run(["bash", "benchmarks/device_check.sh", "--gpu"], cwd=REPO, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown option --gpu")


@pytest.mark.slow
def test_device_check_runs_in_cpu_quick_mode(tmp_path):
    """benchmarks/device_check.sh --cpu: every section prints its rows (about 1.5 min on 2 cores)."""
    proc = subprocess.run(["bash", "benchmarks/device_check.sh", "--cpu"], cwd=REPO,
                          env=dict(ENV, OUT_DIR=str(tmp_path)), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{"row"')]
    assert [(r["row"], r["model"], r["policy"]) for r in rows] == [
        ("step", "lenet5", "float32"), ("step", "lenet5", "mixed_bfloat16"), ("throughput", "resnet20", "float32")]
    assert all(r["ratio_vs_k_plus_1_clean"] > 0 for r in rows[:2]) and rows[2]["images_per_s"] > 0
    for name in ("| PGD-40 eps=0.1 |", "| PGD-40 eps=0.3 |", "| APGD-CE eps=0.3 |", "| APGD-DLR eps=0.3 |"):
        assert name in proc.stdout
    assert (tmp_path / "attacks.json").is_file() and (tmp_path / "apgd.json").is_file()


def test_the_launcher_does_not_import_tensorflow():
    """launch_local.py starts its workers without paying for TensorFlow (cli.run(..., tensorflow=False))."""
    proc = subprocess.run([sys.executable, "-X", "importtime", os.path.join(REPO, "scripts", "launch_local.py"),
                           "--num_workers=1", "--timeout=30", "--", sys.executable, "-c", "print('child ran')"],
                          cwd=REPO, env=ENV, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == ["[worker 0 (chief)] child ran", "worker 0 (chief): exit 0"]
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert "tfsparse.launch" in imported and not [name for name in imported if name.split(".")[0] == "tensorflow"]
