"""Format readers: Keras-style ``.npz``, MNIST IDX files, CIFAR "python version" pickle
batches and TFDS.

Every reader returns raw ``(x_train, y_train, x_test, y_test, class_names)`` with uint8 images
(``class_names`` is None when the format carries no names); ``load`` turns that into a
validated :class:`~tfsparse.data.catalog.Dataset`. Image-folder trees and archives are read by
:mod:`tfsparse.data.image_folder`.
"""

import glob
import gzip
import os
import pickle
import zipfile

import numpy as np

from tfsparse.data.catalog import CIFAR10_CLASSES
from tfsparse.data.catalog import CIFAR100_CLASSES
from tfsparse.data.catalog import _TEST_SPLITS
from tfsparse.data.checks import DataError
from tfsparse.data.checks import check_splits

_CIFAR_PICKLE_DIRS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _one_line(error, limit=200):
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_npz(path):
    """Reads a Keras-style ``.npz`` with ``x_train, y_train, x_test, y_test`` arrays.

    An optional ``class_names`` array gives the class names; without it they are None.
    """
    if not os.path.isfile(path):
        raise DataError(f"npz file {path} does not exist; pass the path of an existing .npz file")
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as f:
            files = set(f.files)
            arrays = [f[k] for k in keys if k in files]
            names = tuple(str(n) for n in f["class_names"]) if "class_names" in files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # EOFError: empty; BadZipFile: truncated
        raise DataError(f"{path} is not a readable .npz file ({_one_line(e) or type(e).__name__}); "
                        f"re-create it with np.savez") from e
    missing = [k for k in keys if k not in files]
    if missing:
        raise DataError(f"{path} lacks arrays {missing} (has {sorted(files)}); save it with "
                        f"np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)")
    check_splits(*arrays, path)
    return (*arrays, names)


def _idx_path(directory, stem):
    for candidate in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                      stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def _read_idx_file(path):
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError; a cut .gz file ends early
        raise DataError(f"{path} cannot be read ({_one_line(e)}); the file is truncated or corrupt: "
                        f"download it again") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file (bad magic number); "
                        f"use the original MNIST *-ubyte files")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path} holds {data.size} bytes of data but its header says {shape}; "
                        f"the file is truncated or corrupt: download it again")
    return data.reshape(shape)


def read_idx(directory):
    """Reads MNIST-style IDX files (``train-images-idx3-ubyte`` etc., gzipped or not)."""
    if os.path.isfile(directory):
        directory = os.path.dirname(directory)
    paths = [_idx_path(directory, stem) for stem in _IDX_FILES]
    missing = [stem for stem, p in zip(_IDX_FILES, paths) if p is None]
    if missing:
        raise DataError(f"IDX files {missing} (or .gz) not found in {directory}; put all four "
                        f"MNIST IDX files in one directory")
    x_train, y_train, x_test, y_test = (_read_idx_file(p) for p in paths)
    check_splits(x_train, y_train, x_test, y_test, directory)
    return x_train, y_train, x_test, y_test, None


def _unpickle(path, keys=()):
    """A CIFAR pickle batch: a dict holding ``keys``; a damaged or foreign file is a DataError."""
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as e:
        raise DataError(f"{path} is not a readable CIFAR pickle batch ({_one_line(e) or type(e).__name__}); "
                        f"the file is truncated or corrupt: download it again") from e
    missing = [key.decode() for key in keys if not isinstance(batch, dict) or key not in batch]
    if missing:
        raise DataError(f"{path} lacks the entries {missing} of a CIFAR pickle batch; use the original "
                        f"\"python version\" files")
    return batch


def _cifar_images(batch, path):
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path} has data of shape {data.shape}; expected (N, 3072) CIFAR rows")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def read_cifar_pickle(directory):
    """Reads the CIFAR-10 or CIFAR-100 "python version" pickle batches.

    CIFAR-10: ``data_batch_1..5`` and ``test_batch`` (+ ``batches.meta``); CIFAR-100: ``train``
    and ``test`` with ``fine_labels`` (+ ``meta``). Pickle can run code: read trusted files only.
    """
    for sub in _CIFAR_PICKLE_DIRS.values():
        if os.path.isdir(os.path.join(directory, sub)):
            directory = os.path.join(directory, sub)
            break
    join = lambda name: os.path.join(directory, name)  # noqa: E731
    if os.path.isfile(join("data_batch_1")):  # CIFAR-10
        train_paths = sorted(glob.glob(os.path.join(glob.escape(directory), "data_batch_[0-9]*")))
        test_path, label_key = join("test_batch"), b"labels"
        meta, names_key, default_names = join("batches.meta"), b"label_names", CIFAR10_CLASSES
    elif os.path.isfile(join("train")) and os.path.isfile(join("test")):  # CIFAR-100
        train_paths, test_path, label_key = [join("train")], join("test"), b"fine_labels"
        meta, names_key, default_names = join("meta"), b"fine_label_names", CIFAR100_CLASSES
    else:
        raise DataError(f"no CIFAR pickle batches in {directory}; expected data_batch_1..5 + "
                        f"test_batch (CIFAR-10) or train + test (CIFAR-100)")
    if not os.path.isfile(test_path):
        raise DataError(f"{test_path} not found; the CIFAR directory is incomplete")
    xs, ys = [], []
    for path in train_paths:
        batch = _unpickle(path, (b"data", label_key))
        xs.append(_cifar_images(batch, path))
        ys.append(np.asarray(batch[label_key], dtype=np.int64))
    test = _unpickle(test_path, (b"data", label_key))
    x_test = _cifar_images(test, test_path)
    y_test = np.asarray(test[label_key], dtype=np.int64)
    names = default_names
    if os.path.isfile(meta):
        names = tuple(n.decode() if isinstance(n, bytes) else str(n)
                      for n in _unpickle(meta, (names_key,))[names_key])
    x_train, y_train = np.concatenate(xs), np.concatenate(ys)
    check_splits(x_train, y_train, x_test, y_test, directory)
    return x_train, y_train, x_test, y_test, names


def read_tfds(name, data_dir=None, *, download=True):
    """Reads a TFDS dataset's train and test splits into NumPy arrays.

    ``name`` is a TFDS name (``mnist``, ``cifar10``, ...) or ``image_folder``, which uses
    ``tfds.ImageFolder(data_dir)``. If the data is not prepared in ``data_dir`` (TFDS default
    ``~/tensorflow_datasets``) it is downloaded when ``download`` is true; any failure, e.g.
    no network, becomes a one-line :class:`DataError` saying how to use local files instead.
    """
    import tensorflow_datasets as tfds

    offline_hint = ("pass data_dir= pointing at local files (e.g. mnist.npz, "
                    "cifar-10-batches-py/, an image-folder tree) or at a prepared TFDS directory")
    try:
        if name == "image_folder":
            if data_dir is None:
                raise DataError("TFDS image_folder needs data_dir= pointing at a "
                                "split/class/image tree")
            builder = tfds.ImageFolder(data_dir)
        else:
            builder = tfds.builder(name, data_dir=data_dir)
            if not builder.is_prepared():
                if not download:
                    raise DataError(f"TFDS dataset {name!r} is not prepared in "
                                    f"{builder.data_dir}; {offline_hint}")
                builder.download_and_prepare()
        test_split = next((s for s in _TEST_SPLITS if s in builder.info.splits), "test")
        arrays = []
        for split in ("train", test_split):
            xs, ys = [], []
            ds = builder.as_dataset(split=split, as_supervised=True, batch_size=1024)
            for x, y in tfds.as_numpy(ds):
                xs.append(x)
                ys.append(y)
            arrays += [np.concatenate(xs).astype(np.uint8), np.concatenate(ys).astype(np.int64)]
        names = tuple(builder.info.features["label"].names)
    except DataError:
        raise
    except Exception as e:  # TFDS raises many unrelated types (network, registry, I/O).
        raise DataError(f"TFDS could not provide {name!r} ({type(e).__name__}: {_one_line(e)}); "
                        f"{offline_hint}") from e
    return (*arrays, names)
