"""Dataset readers (embedded sample, local files, TFDS) and ``load()``, the one entry point.

Every reader returns raw ``(x_train, y_train, x_test, y_test, class_names)`` with uint8 images
(``class_names`` is None when the format carries no names); ``load`` turns that into a
validated :class:`Dataset` of float32 images in [0, 1], NHWC, and int64 labels.
"""

import dataclasses
import glob
import gzip
import hashlib
import io
import os
import pickle
import tarfile
import tempfile
import warnings

import numpy as np

from tfsparse.data.checks import DataError
from tfsparse.data.checks import check_pair
from tfsparse.data.pipelines import random_subset

DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "image_folder")
SOURCES = ("auto", "embedded", "local", "tfds")

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

# Canonical class order and, where standard, normalisation constants in [0, 1] pixel units.
_KNOWN = {
    "mnist": dict(classes=tuple(str(i) for i in range(10)), mean=(0.1307,), std=(0.3081,)),
    "fashion_mnist": dict(classes=FASHION_MNIST_CLASSES),
    "cifar10": dict(classes=CIFAR10_CLASSES,
                    mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
    "cifar100": dict(classes=CIFAR100_CLASSES),
}
_CIFAR_PICKLE_DIRS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_TRAIN_SPLIT = "train"
_TEST_SPLITS = ("test", "val", "validation")
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
_CACHE_VERSION = "1"
_EMBEDDED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_embedded",
                         "mnist_sample.npz")


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset: float32 NHWC images in [0, 1], int64 labels, and what they mean.

    ``mean``/``std`` are per-channel constants in [0, 1] pixel units for the model's first,
    non-trainable normalisation layer (SPEC §1); ``source`` says where the data came from.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: tuple
    mean: tuple
    std: tuple
    source: str

    @property
    def input_shape(self) -> tuple:
        """The shape of one image, (height, width, channels)."""
        return tuple(self.x_train.shape[1:])

    def __repr__(self):
        return (f"Dataset(name={self.name!r}, train={len(self.x_train)}, test={len(self.x_test)}, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes}, "
                f"source={self.source!r})")


# ----------------------------------------------------------------------------- readers


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
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is not a readable .npz file ({_one_line(e)}); "
                        f"re-create it with np.savez") from e
    missing = [k for k in keys if k not in files]
    if missing:
        raise DataError(f"{path} lacks arrays {missing} (has {sorted(files)}); save it with "
                        f"np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)")
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
    with opener(path, "rb") as f:
        raw = f.read()
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
    return x_train, y_train, x_test, y_test, None


def _unpickle(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


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
        batch = _unpickle(path)
        xs.append(_cifar_images(batch, path))
        ys.append(np.asarray(batch[label_key], dtype=np.int64))
    test = _unpickle(test_path)
    x_test = _cifar_images(test, test_path)
    y_test = np.asarray(test[label_key], dtype=np.int64)
    names = default_names
    if os.path.isfile(meta):
        names = tuple(n.decode() if isinstance(n, bytes) else str(n)
                      for n in _unpickle(meta)[names_key])
    return np.concatenate(xs), np.concatenate(ys), x_test, y_test, names


def _decode_image(data, where):
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            img = img if img.mode in ("L", "RGB") else img.convert(
                "L" if img.mode in ("1", "I;16", "I", "F") else "RGB")
            return np.asarray(img, dtype=np.uint8)
    except OSError as e:
        raise DataError(f"cannot decode image {where} ({_one_line(e)}); remove or "
                        f"re-encode that file") from e


def _is_split(part):
    return part == _TRAIN_SPLIT or part in _TEST_SPLITS


def _tree_root(path):
    """``path`` if it has a train/ folder, else its only subfolder that has one, else None."""
    if os.path.isdir(os.path.join(path, _TRAIN_SPLIT)):
        return path
    subs = sorted(glob.glob(os.path.join(glob.escape(path), "*", _TRAIN_SPLIT, "")))
    return os.path.dirname(os.path.dirname(subs[0])) if len(subs) == 1 else None


def _collect_folder(root):
    """Yields (split_dir, class, filename, bytes) for split/class/image files under ``root``."""
    top = _tree_root(root) or root
    for split in sorted(os.listdir(top)):
        if not _is_split(split) or not os.path.isdir(os.path.join(top, split)):
            continue
        for cls in sorted(os.listdir(os.path.join(top, split))):
            cls_dir = os.path.join(top, split, cls)
            if not os.path.isdir(cls_dir):
                continue
            for fname in sorted(os.listdir(cls_dir)):
                if fname.lower().endswith(_IMAGE_EXTENSIONS) and not fname.startswith("."):
                    with open(os.path.join(cls_dir, fname), "rb") as f:
                        yield split, cls, fname, f.read()


def _collect_archive(path):
    """Streams the archive (no extraction to disk), yielding like :func:`_collect_folder`."""
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                parts = member.name.replace("\\", "/").strip("/").split("/")
                if (not member.isfile() or len(parts) < 3 or parts[-1].startswith(".")
                        or not parts[-1].lower().endswith(_IMAGE_EXTENSIONS)
                        or not _is_split(parts[-3])):
                    continue
                yield parts[-3], parts[-2], "/".join(parts), tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"cannot read archive {path} ({_one_line(e)}); check that it is a "
                        f"complete .tar/.tar.gz of split/class/image files") from e


def _assemble(entries, where):
    """Decodes collected entries into uint8 arrays; class order = sorted folder names."""
    groups = {}
    for split, cls, name, data in sorted(entries, key=lambda e: (e[0], e[1], e[2])):
        groups.setdefault(split, []).append((cls, name, data))
    test_split = next((s for s in _TEST_SPLITS if s in groups), "test")
    by_split = {"train": groups.get(_TRAIN_SPLIT, []), "test": groups.get(test_split, [])}
    if not by_split["train"] or not by_split["test"]:
        empty = "train" if not by_split["train"] else "test"
        raise DataError(f"no {empty} images in {where}; expected {empty}/<class>/*.png|jpg|jpeg "
                        f"(an image-folder tree with train/ and test/ splits)")
    class_names = tuple(sorted({cls for items in by_split.values() for cls, _, _ in items}))
    index = {c: i for i, c in enumerate(class_names)}
    # Serial decoding: measured faster than a thread pool here (Pillow's per-image overhead
    # is mostly Python, so threads only add contention).
    out = []
    for items in (by_split["train"], by_split["test"]):
        images = [_decode_image(data, f"{name} in {where}") for _, name, data in items]
        out.append((images, np.array([index[cls] for cls, _, _ in items], dtype=np.int64)))
    shapes = {img.shape[:2] for images, _ in out for img in images}
    if len(shapes) > 1:
        raise DataError(f"images in {where} have different sizes {sorted(shapes)[:3]}; resize "
                        f"them to one height x width before loading")
    colour = any(img.ndim == 3 for images, _ in out for img in images)
    arrays = []
    for images, labels in out:
        if colour:
            images = [np.repeat(img[..., None], 3, axis=-1) if img.ndim == 2 else img
                      for img in images]
        arrays += [np.stack(images), labels]
    return (*arrays, class_names)


def _cache_dir():
    return os.environ.get("TFSPARSE_CACHE",
                          os.path.join(os.path.expanduser("~"), ".cache", "tfsparse"))


def _cache_path(path):
    st = os.stat(path)
    key = f"{_CACHE_VERSION}|{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    base = os.path.basename(path).split(".")[0]
    return os.path.join(_cache_dir(), f"image_folder-{base}-{digest}.npz")


def _write_cache(cache, raw):
    x_train, y_train, x_test, y_test, names = raw
    try:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".npz.tmp", dir=os.path.dirname(cache))
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                         class_names=np.array(names))
            os.replace(tmp, cache)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    except OSError as e:
        warnings.warn(f"could not write the decoded-image cache {cache} ({_one_line(e)}); "
                      f"set TFSPARSE_CACHE to a writable directory to speed up the next load")


def read_image_folder(path):
    """Reads an image-folder tree ``split/class/*.png|jpg|jpeg``: a directory or a .tar(.gz).

    Splits are ``train`` and ``test`` (``val``/``validation`` accepted for test); one extra
    top-level folder is allowed. Labels index the sorted class folder names (``load`` reorders
    them to a dataset's canonical order when it has one). Archives are streamed without
    extraction and their decoded arrays cached in ``$TFSPARSE_CACHE`` (default
    ``~/.cache/tfsparse``), keyed by absolute path, size and mtime, because decoding tens of
    thousands of JPEGs takes far longer than reading the cache.
    """
    if os.path.isdir(path):
        return _mix_classes(_assemble(_collect_folder(path), path))
    if not os.path.isfile(path):
        raise DataError(f"image folder {path} does not exist; pass a directory with train/ and "
                        f"test/ subfolders or a .tar/.tar.gz of one")
    if not path.lower().endswith(_ARCHIVE_SUFFIXES):
        raise DataError(f"{path} is not a directory or a .tar/.tar.gz/.tgz archive; pass an "
                        f"image-folder tree or an archive of one")
    cache = _cache_path(path)
    if os.path.isfile(cache):
        try:
            with np.load(cache, allow_pickle=False) as f:
                return _mix_classes((f["x_train"], f["y_train"], f["x_test"], f["y_test"],
                                     tuple(str(n) for n in f["class_names"])))
        except (OSError, ValueError, KeyError):
            pass  # Unreadable cache: decode again and overwrite it.
    raw = _assemble(_collect_archive(path), path)
    _write_cache(cache, raw)
    return _mix_classes(raw)


def _mix_classes(raw):
    """Puts each split of an image-folder tree in a fixed pseudo-random order (seed 0).

    A folder tree has no natural sample order; read class by class, "the first n test
    images" (what evaluation subsets take) would all be one class. The permutation is fixed,
    so the order is the same on every load and machine.
    """
    x_train, y_train, x_test, y_test, names = raw
    rng = np.random.default_rng(0)
    train, test = rng.permutation(len(y_train)), rng.permutation(len(y_test))
    return x_train[train], y_train[train], x_test[test], y_test[test], names


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


# ----------------------------------------------------------------------------- load


def _one_line(error, limit=200):
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _find_local(name, data_dir):
    """Resolves ``data_dir`` (file or directory) to (reader, path)."""
    if not os.path.exists(data_dir):
        raise DataError(f"data_dir {data_dir} does not exist; pass an existing file or directory, "
                        f"or leave data_dir unset to use the embedded sample or TFDS")
    lower = data_dir.lower()
    if os.path.isfile(data_dir):
        if lower.endswith(".npz"):
            return read_npz, data_dir
        if lower.endswith(_ARCHIVE_SUFFIXES):
            return read_image_folder, data_dir
        if "-ubyte" in lower or ".idx" in lower:
            return read_idx, os.path.dirname(data_dir) or "."
        raise DataError(f"data_dir {data_dir} is a file of unknown type; pass a .npz, a "
                        f".tar/.tar.gz/.tgz image-folder archive, an IDX file or a directory")
    join = lambda *p: os.path.join(data_dir, *p)  # noqa: E731
    if os.path.isfile(join(f"{name}.npz")):
        return read_npz, join(f"{name}.npz")
    pattern = os.path.join(glob.escape(data_dir), name + "*")
    archives = sorted(p for p in glob.glob(pattern) if p.lower().endswith(_ARCHIVE_SUFFIXES))
    if archives:
        return read_image_folder, archives[0]
    pickle_dir = _CIFAR_PICKLE_DIRS.get(name)
    if pickle_dir and os.path.isdir(join(pickle_dir)):
        return read_cifar_pickle, join(pickle_dir)
    if os.path.isfile(join("data_batch_1")) or (
            os.path.isfile(join("train")) and os.path.isfile(join("meta"))):
        return read_cifar_pickle, data_dir
    if _idx_path(data_dir, _IDX_FILES[0]) is not None:
        return read_idx, data_dir
    tree = _tree_root(data_dir)
    if tree is not None:
        return read_image_folder, tree
    pickle_hint = f"{pickle_dir}/, " if pickle_dir else ""
    raise DataError(f"no {name} data in {data_dir}: looked for {name}.npz, {name}*.tar.gz|.tgz|"
                    f".tar, {pickle_hint}CIFAR pickle batches, MNIST IDX files "
                    f"({_IDX_FILES[0]}[.gz], ...) and a train/<class>/ + test/<class>/ tree; "
                    f"pass the data file itself as data_dir or use source='tfds'")


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
    random subset without replacement. Bad input raises a one-line :class:`DataError`.
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
    mean, std = _norm_constants(name, x_train)
    return Dataset(name=name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   num_classes=len(class_names), class_names=class_names, mean=mean, std=std,
                   source=where)
