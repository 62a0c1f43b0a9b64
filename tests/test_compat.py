"""Keras flavour selection (SPEC §1): tf_keras always, a clear error when it is too late."""

import os
import subprocess
import sys


def run_python(code, **env):
    environment = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    environment.update(env, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=300)


def test_importing_tfsparse_first_selects_tf_keras():
    result = run_python(
        "import tfsparse\nimport tensorflow as tf\nfrom tfsparse.compat import keras\n"
        "print(keras.__version__, tf.keras.__name__)"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    version, module = result.stdout.split()
    assert version.startswith("2.") and module.startswith("tf_keras")


def test_tensorflow_imported_first_with_keras3_fails_clearly():
    result = run_python("import tensorflow as tf\ntf.keras.layers\nimport tfsparse")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError:") and "TF_USE_LEGACY_KERAS=1" in last and "Import tfsparse before" in last


def test_tensorflow_imported_first_with_legacy_env_is_fine():
    result = run_python("import tensorflow as tf\nimport tfsparse\nfrom tfsparse.compat import keras", TF_USE_LEGACY_KERAS="1")
    assert result.returncode == 0, result.stderr[-2000:]
