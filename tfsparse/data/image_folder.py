"""Image-folder trees (``split/class/*.png|jpg|jpeg``) as directories or .tar(.gz) archives,
and the on-disk cache of decoded archives.

:func:`read_image_folder` returns raw uint8 arrays like the readers in
:mod:`tfsparse.data.readers`, each split in a fixed class-mixing order.
"""

import glob
import hashlib
import io
import os
import tarfile
import tempfile
import warnings

import numpy as np

from tfsparse.data.catalog import _TEST_SPLITS
from tfsparse.data.catalog import _TRAIN_SPLIT
from tfsparse.data.checks import DataError
from tfsparse.data.readers import _one_line

_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
_CACHE_VERSION = "1"


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
