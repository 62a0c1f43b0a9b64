"""Finding the local data for a dataset name in ``data_dir``: which reader, and which path."""

import glob
import os

from tfsparse.data.checks import DataError
from tfsparse.data.image_folder import _ARCHIVE_SUFFIXES
from tfsparse.data.image_folder import _tree_root
from tfsparse.data.image_folder import read_image_folder
from tfsparse.data.readers import _CIFAR_PICKLE_DIRS
from tfsparse.data.readers import _IDX_FILES
from tfsparse.data.readers import _idx_path
from tfsparse.data.readers import read_cifar_pickle
from tfsparse.data.readers import read_idx
from tfsparse.data.readers import read_npz


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
