"""``load()``, the one entry point: assembles a :class:`Dataset` from whatever a reader gives.

It picks the source (embedded sample, local files found by :mod:`tfsparse.data.discovery`, or
TFDS), converts the raw uint8 arrays to float32 NHWC images in [0, 1] and int64 labels, maps
labels to the dataset's canonical class order, selects classes, takes seeded subsets and
attaches normalisation constants.
"""

import os

import numpy as np

from tfsparse.data.catalog import CIFAR10_CLASSES
from tfsparse.data.catalog import CIFAR100_CLASSES
from tfsparse.data.catalog import DATASETS
from tfsparse.data.catalog import FASHION_MNIST_CLASSES
from tfsparse.data.catalog import Dataset
from tfsparse.data.checks import DataError
from tfsparse.data.checks import check_pair
from tfsparse.data.discovery import _find_local
from tfsparse.data.pipelines import random_subset
from tfsparse.data.readers import read_npz
from tfsparse.data.readers import read_tfds

SOURCES = ("auto", "embedded", "local", "tfds")

# Canonical class order and, where standard, normalisation constants in [0, 1] pixel units.
# ``shape``: the image shape every copy of the dataset has; data of another shape is refused
# (an --data_dir file of another dataset would otherwise train a model recorded under this name).
_KNOWN = {
    "mnist": dict(classes=tuple(str(i) for i in range(10)), mean=(0.1307,), std=(0.3081,),
                  shape=(28, 28, 1)),
    "fashion_mnist": dict(classes=FASHION_MNIST_CLASSES, shape=(28, 28, 1)),
    "cifar10": dict(classes=CIFAR10_CLASSES,
                    mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), shape=(32, 32, 3)),
    "cifar100": dict(classes=CIFAR100_CLASSES, shape=(32, 32, 3)),
}
_EMBEDDED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_embedded",
                         "mnist_sample.npz")


def _to_float_images(x, what):
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if x.dtype in (np.float32, np.float64):
        return x.astype(np.float32)
    raise DataError(f"{what} images have dtype {x.dtype}; store them as uint8 (0-255) or as "
                    f"float in [0, 1]")


def _check_not_binarised(x_train, x_test, where):
    """Refuses uint8 images that hold only 0 and 1: uint8 means 0-255 here, so dividing by 255
    would turn binarised digits into near-black images (measured: accuracy 0.20) without a word.

    Refused rather than guessed (or switched by a flag): a uint8 file is 0-255 by convention,
    and the fix is one line in the file, not an option of every script.
    """
    arrays = [np.asarray(x) for x in (x_train, x_test)]
    if all(a.dtype == np.uint8 and a.size for a in arrays) and max(int(a.max()) for a in arrays) <= 1:
        raise DataError(f"{where} holds uint8 images whose values are only 0 and 1 (binarised?); uint8 pixels "
                        "are read as 0-255 and divided by 255, which would make them near-black: store them "
                        "as float32 in [0, 1] (x.astype(np.float32)) or as uint8 0/255 (x * 255)")


def _check_shape(name, x, where):
    """Refuses images whose shape is not the one every copy of dataset ``name`` has."""
    shape = _KNOWN.get(name, {}).get("shape")
    if shape is None or tuple(x.shape[1:]) == shape:
        return
    matching = [n for n, known in _KNOWN.items() if known.get("shape") == tuple(x.shape[1:])]
    fix = (f"name the dataset the file holds ({', '.join(matching)})" if matching
           else f"pass {name} data")
    raise DataError(f"{name} images are {'x'.join(map(str, shape))}, but {where} holds images of shape "
                    f"{tuple(x.shape[1:])}; {fix}")


def _to_labels(y):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if np.issubdtype(y.dtype, np.integer):
        y = y.astype(np.int64)
    elif (y.ndim == 1 and y.size and np.issubdtype(y.dtype, np.floating)
          and np.all(y == np.round(y))):
        y = y.astype(np.int64)  # integral float labels, as some exports store them
    return y


def _resolve_classes(classes, class_names, name):
    """Turns ``classes`` (indices or names) into a list of distinct valid indices."""
    if isinstance(classes, (int, np.integer, str)):
        classes = (classes,)
    classes = list(classes)
    if not classes:
        raise DataError(f"classes is empty; pass at least one class of {name}, "
                        f"e.g. classes=(1, 7)")
    picked = []
    for c in classes:
        if isinstance(c, str) and c in class_names:
            index = class_names.index(c)
        elif isinstance(c, (int, np.integer)) and 0 <= int(c) < len(class_names):
            index = int(c)
        else:
            shown = ", ".join(class_names[:12]) + (", ..." if len(class_names) > 12 else "")
            raise DataError(f"class {c!r} is not in {name}, which has classes "
                            f"0..{len(class_names) - 1} ({shown}); pick existing class indices "
                            f"or names")
        if index in picked:
            raise DataError(f"class {c!r} is listed twice in classes={tuple(classes)}; list each "
                            f"class once")
        picked.append(index)
    return picked


def _filter_classes(x, y, picked, split, name, class_names):
    mask = np.isin(y, picked)
    relabel = np.full(len(class_names), -1, dtype=np.int64)
    relabel[picked] = np.arange(len(picked))
    y_new = relabel[y[mask]]
    absent = [class_names[c] for c in picked if not np.any(y == c)]
    if absent:
        raise DataError(f"classes {absent} have no {split} examples in {name}; pick classes "
                        f"present in the data")
    return x[mask], y_new


def _reorder_canonical(name, raw_names, y_train, y_test):
    """Maps labels from the reader's class order to the dataset's canonical order if known."""
    canonical = _KNOWN.get(name, {}).get("classes")
    if raw_names is None or canonical is None or tuple(raw_names) == canonical \
            or set(raw_names) != set(canonical):
        return raw_names, y_train, y_test
    mapping = np.array([canonical.index(c) for c in raw_names], dtype=np.int64)
    return canonical, mapping[y_train], mapping[y_test]


def _index_names(*labels):
    """Names "0".."k-1" for a format without class names, k = 1 + the largest integer label."""
    top = max((int(y.max()) + 1 for y in labels
               if y.ndim == 1 and y.size and np.issubdtype(y.dtype, np.integer)), default=0)
    return tuple(str(i) for i in range(top))


def _norm_constants(name, x_train):
    known = _KNOWN.get(name, {})
    channels = x_train.shape[-1]
    if "mean" in known and len(known["mean"]) == channels:
        return known["mean"], known["std"]
    mean = x_train.mean(axis=(0, 1, 2), dtype=np.float64)
    std = x_train.std(axis=(0, 1, 2), dtype=np.float64)
    # The std floor keeps a constant channel from dividing by zero in the model's first layer.
    return (tuple(round(float(m), 4) for m in mean),
            tuple(round(float(max(s, 1e-3)), 4) for s in std))


def load(name="mnist", data_dir=None, *, num_train=None, num_test=None, classes=None, seed=0,
         source="auto") -> Dataset:
    """Loads a dataset as float32 NHWC images in [0, 1] with int64 labels.

    ``source="auto"`` picks, in SPEC §2 order: the embedded MNIST sample when ``name`` is
    ``mnist`` and no ``data_dir`` is given, local files when ``data_dir`` is given, else TFDS.
    ``data_dir`` is a file (.npz, .tar/.tar.gz/.tgz image folder, IDX file) or a directory
    searched for ``{name}.npz``, ``{name}*.tar.gz``, CIFAR pickle batches, MNIST IDX files or an
    image-folder tree. ``classes`` (indices or names) keeps those classes, relabelled 0..k-1 in
    the order given (e.g. Guo's "1" vs "7" pair); ``num_train``/``num_test`` take a seeded
    random subset without replacement. Bad input raises a one-line :class:`DataError`, also for
    images of another shape than ``name``'s (28x28x1 MNIST, 32x32x3 CIFAR) and for uint8 images
    holding only 0 and 1.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if source not in SOURCES:
        raise DataError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    if source == "auto":
        source = ("embedded" if data_dir is None and name == "mnist"
                  else "local" if data_dir is not None else "tfds")
    data_dir = os.fspath(data_dir) if data_dir is not None else None
    if source == "embedded":
        if name != "mnist":
            raise DataError(f"the embedded sample is MNIST only, not {name!r}; pass data_dir= "
                            f"or source='tfds' for {name}")
        raw, where = read_npz(_EMBEDDED), "embedded"
    elif source == "local":
        if data_dir is None:
            raise DataError(f"source='local' needs data_dir= pointing at the {name} files")
        reader, path = _find_local(name, data_dir)
        raw, where = reader(path), os.path.abspath(path)
    else:
        if name == "image_folder" and data_dir is None:
            raise DataError("image_folder needs data_dir= pointing at a train/<class>/ + "
                            "test/<class>/ tree or a .tar/.tar.gz of one")
        raw, where = read_tfds(name, data_dir), f"tfds:{name}"

    x_train, y_train, x_test, y_test, raw_names = raw
    _check_not_binarised(x_train, x_test, where)
    x_train, x_test = _to_float_images(x_train, "train"), _to_float_images(x_test, "test")
    y_train, y_test = _to_labels(y_train), _to_labels(y_test)
    class_names, y_train, y_test = _reorder_canonical(name, raw_names, y_train, y_test)
    if class_names is None:
        class_names = _KNOWN.get(name, {}).get("classes") or _index_names(y_train, y_test)
    class_names = tuple(class_names)
    check_pair(x_train, y_train, len(class_names), f"{name} train")
    check_pair(x_test, y_test, len(class_names), f"{name} test")

    if classes is not None:
        picked = _resolve_classes(classes, class_names, name)
        x_train, y_train = _filter_classes(x_train, y_train, picked, "train", name, class_names)
        x_test, y_test = _filter_classes(x_test, y_test, picked, "test", name, class_names)
        class_names = tuple(class_names[c] for c in picked)
    x_train, y_train = random_subset(x_train, y_train, num_train, [seed, 0], what="num_train")
    x_test, y_test = random_subset(x_test, y_test, num_test, [seed, 1], what="num_test")
    _check_shape(name, x_train, where)  # after the value and label checks, which name the split
    _check_shape(name, x_test, where)
    mean, std = _norm_constants(name, x_train)
    return Dataset(name=name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   num_classes=len(class_names), class_names=class_names, mean=mean, std=std,
                   source=where)
