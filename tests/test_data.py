"""Tests for tfsparse.data: every local format on tiny files, the embedded sample, TFDS (mocked),
pipelines, augmentation, splits and the one-line error messages."""

import dataclasses
import gzip
import os
import pickle
import tarfile

import numpy as np
import pytest
from PIL import Image

from tfsparse.data import DATASETS
from tfsparse.data import DataError
from tfsparse.data import binary_labels
from tfsparse.data import check_images
from tfsparse.data import check_labels
from tfsparse.data import cifar_augment
from tfsparse.data import load
from tfsparse.data import random_subset
from tfsparse.data import read_cifar_pickle
from tfsparse.data import read_image_folder
from tfsparse.data import read_tfds
from tfsparse.data import test_pipeline
from tfsparse.data import train_pipeline
from tfsparse.data import validation_split
from tfsparse.data import catalog
from tfsparse.data import image_folder
from tfsparse.data import sources

RNG = np.random.default_rng(1234)


def _images(n, shape=(6, 6)):
    return RNG.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def _one_line_error(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"
    return msg


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("TFSPARSE_CACHE", str(tmp_path / "cache"))


# ----------------------------------------------------------------------------- embedded sample


def test_embedded_sample_is_balanced_real_mnist():
    ds = load()
    assert ds.source == "embedded" and ds.name == "mnist"
    assert ds.x_train.shape == (6000, 28, 28, 1) and ds.x_test.shape == (1000, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert ds.num_classes == 10 and ds.class_names == tuple("0123456789")
    assert np.bincount(ds.y_train).tolist() == [600] * 10
    assert np.bincount(ds.y_test).tolist() == [100] * 10
    assert ds.input_shape == (28, 28, 1)
    assert ds.mean == (0.1307,) and ds.std == (0.3081,)
    # Real digits: MNIST's mean pixel is about 0.13, far from uniform noise's 0.5.
    assert 0.11 < ds.x_train.mean() < 0.15
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.name = "other"


# ----------------------------------------------------------------------------- local formats


def _write_npz(path, n_train=20, n_test=10, num_classes=10, **extra):
    arrays = dict(x_train=_images(n_train), y_train=np.arange(n_train) % num_classes,
                  x_test=_images(n_test), y_test=np.arange(n_test) % num_classes)
    arrays.update(extra)
    np.savez(path, **arrays)
    return arrays


def test_npz_as_file_and_found_in_directory(tmp_path):
    arrays = _write_npz(tmp_path / "mnist.npz", x_train=_images(20, (28, 28)), x_test=_images(10, (28, 28)))
    by_file = load("mnist", tmp_path / "mnist.npz")
    by_dir = load("mnist", tmp_path)
    assert by_file.source == by_dir.source == str(tmp_path / "mnist.npz")
    np.testing.assert_array_equal(by_file.x_train, by_dir.x_train)
    assert by_file.x_train.shape == (20, 28, 28, 1)
    np.testing.assert_allclose(by_file.x_train[..., 0] * 255, arrays["x_train"], atol=1e-4)
    np.testing.assert_array_equal(by_file.y_test, arrays["y_test"])


def test_npz_class_names_and_computed_normalisation(tmp_path):
    path = tmp_path / "mine.npz"
    _write_npz(path, num_classes=3, class_names=np.array(["a", "b", "c"]))
    ds = load("image_folder", path)
    assert ds.class_names == ("a", "b", "c") and ds.num_classes == 3
    np.testing.assert_allclose(ds.mean, [ds.x_train.mean()], atol=1e-4)
    np.testing.assert_allclose(ds.std, [ds.x_train.std()], atol=1e-4)


def _write_idx(path, array, gz):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    opener = gzip.open if gz else open
    with opener(str(path) + (".gz" if gz else ""), "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_gz_and_raw(tmp_path, gz):
    x_train, x_test = _images(12, (28, 28)), _images(5, (28, 28))
    y_train, y_test = np.arange(12) % 10, np.arange(5) % 10
    _write_idx(tmp_path / "train-images-idx3-ubyte", x_train, gz)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", y_train, gz)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", x_test, gz)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", y_test, gz)
    ds = load("fashion_mnist", tmp_path)
    assert ds.x_train.shape == (12, 28, 28, 1) and ds.x_test.shape == (5, 28, 28, 1)
    np.testing.assert_array_equal(np.round(ds.x_test[..., 0] * 255).astype(np.uint8), x_test)
    np.testing.assert_array_equal(ds.y_train, y_train)
    assert ds.class_names[0] == "T-shirt/top" and ds.num_classes == 10
    # An IDX file as data_dir means "its directory".
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    np.testing.assert_array_equal(load("fashion_mnist", tmp_path / name).x_train, ds.x_train)


def test_idx_truncated_file_is_a_clear_error(tmp_path):
    _write_idx(tmp_path / "train-images-idx3-ubyte", _images(3, (4, 4)), gz=False)
    with open(tmp_path / "train-images-idx3-ubyte", "ab") as f:
        f.write(b"\x00")
    for stem in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        _write_idx(tmp_path / stem, np.zeros((3,) if "labels" in stem else (3, 4, 4)), gz=False)
    with pytest.raises(DataError) as e:
        load("mnist", tmp_path)
    _one_line_error(e, "truncated or corrupt")


def _cifar_rows(images_nhwc):
    return images_nhwc.transpose(0, 3, 1, 2).reshape(len(images_nhwc), -1)


def test_cifar10_pickle_batches(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    train = [_images(2, (32, 32, 3)) for _ in range(5)]
    for i, x in enumerate(train, start=1):
        with open(root / f"data_batch_{i}", "wb") as f:
            pickle.dump({b"data": _cifar_rows(x), b"labels": [i, 9 - i]}, f)
    x_test = _images(3, (32, 32, 3))
    with open(root / "test_batch", "wb") as f:
        pickle.dump({b"data": _cifar_rows(x_test), b"labels": [0, 1, 2]}, f)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in catalog.CIFAR10_CLASSES]}, f)
    ds = load("cifar10", tmp_path)
    assert ds.source == str(root)
    assert ds.x_train.shape == (10, 32, 32, 3)
    pixels = np.round(ds.x_train * 255).astype(np.uint8)
    np.testing.assert_array_equal(pixels, np.concatenate(train))
    np.testing.assert_array_equal(ds.y_train, [1, 8, 2, 7, 3, 6, 4, 5, 5, 4])
    assert ds.class_names == catalog.CIFAR10_CLASSES
    assert ds.mean == (0.4914, 0.4822, 0.4465)


def test_cifar100_pickle_fine_labels(tmp_path):
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    x_train, x_test = _images(4, (32, 32, 3)), _images(2, (32, 32, 3))
    for name, x, fine in (("train", x_train, [0, 50, 99, 7]), ("test", x_test, [99, 3])):
        with open(root / name, "wb") as f:
            pickle.dump({b"data": _cifar_rows(x), b"fine_labels": fine,
                         b"coarse_labels": [0] * len(x)}, f)
    raw = read_cifar_pickle(str(root))
    assert raw[4] == catalog.CIFAR100_CLASSES and len(raw[4]) == 100
    assert list(raw[4]) == sorted(raw[4])
    ds = load("cifar100", tmp_path)
    assert ds.num_classes == 100 and ds.y_train.tolist() == [0, 50, 99, 7]
    np.testing.assert_array_equal(np.round(ds.x_test * 255).astype(np.uint8), x_test)


def _write_tree(root, classes=("cat", "dog", "ant"), per_split=(3, 2), mode="RGB", ext="png", size=(5, 7)):
    """Writes split/class/NNNN.ext images; returns {split: [(class, uint8 image), ...]}."""
    written = {}
    for split, n in zip(("train", "test"), per_split):
        for cls in classes:
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                shape = (*size, 3) if mode == "RGB" else size
                img = _images(1, shape)[0]
                Image.fromarray(img, mode=mode).save(root / split / cls / f"{i:04d}.{ext}")
                written.setdefault(split, []).append((cls, img))
    return written


def test_image_folder_directory_and_targz_agree(tmp_path):
    tree = tmp_path / "pets"
    written = _write_tree(tree)
    archive = tmp_path / "pets.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname="pets")  # one extra top-level folder, as archives often have
    from_dir = load("image_folder", tree)
    from_tar = load("image_folder", archive)
    assert from_dir.class_names == from_tar.class_names == ("ant", "cat", "dog")
    assert from_dir.x_train.shape == (9, 5, 7, 3) and from_dir.x_test.shape == (6, 5, 7, 3)
    np.testing.assert_array_equal(from_dir.x_train, from_tar.x_train)
    np.testing.assert_array_equal(from_dir.y_test, from_tar.y_test)
    # PNG is lossless: pixels and labels come back exactly, in a fixed order mixing the
    # classes (read class by class, any prefix of the test split would be one class).
    expected = {img.tobytes(): cls for cls, img in written["train"]}
    x = np.round(from_dir.x_train * 255).astype(np.uint8)
    assert sorted(expected[got.tobytes()] for got in x) == sorted(expected.values())
    for got, label in zip(x, from_dir.y_train):
        assert from_dir.class_names[label] == expected[got.tobytes()]
    for labels in (from_dir.y_train, from_dir.y_test):
        assert np.any(np.diff(labels) < 0)
    np.testing.assert_array_equal(load("image_folder", tree).y_test, from_dir.y_test)


def test_image_folder_archive_is_cached(tmp_path, monkeypatch):
    _write_tree(tmp_path / "t", mode="L", ext="jpg")
    archive = tmp_path / "digits.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "t" / "train", arcname="train")
        tar.add(tmp_path / "t" / "test", arcname="test")
    first = read_image_folder(str(archive))
    assert first[0].shape == (9, 5, 7) and first[0].dtype == np.uint8  # grey JPEG
    assert len(os.listdir(tmp_path / "cache")) == 1

    def no_decoding(path):
        raise AssertionError("the cached archive was decoded again")

    monkeypatch.setattr(image_folder, "_collect_archive", no_decoding)
    second = read_image_folder(str(archive))
    for a, b in zip(first[:4], second[:4]):
        np.testing.assert_array_equal(a, b)
    assert second[4] == first[4]
    ds = load("image_folder", archive, classes=("cat",))
    assert ds.x_train.shape == (3, 5, 7, 1) and ds.class_names == ("cat",)


def test_directory_search_finds_named_archive_and_tree(tmp_path):
    # CIFAR-10's 32x32x3: load refuses another shape under a known dataset's name.
    _write_tree(tmp_path / "src", classes=catalog.CIFAR10_CLASSES, per_split=(1, 1), size=(32, 32))
    with tarfile.open(tmp_path / "cifar10_jpeg.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "train", arcname="train")
        tar.add(tmp_path / "src" / "test", arcname="test")
    ds = load("cifar10", tmp_path)
    assert ds.source == str(tmp_path / "cifar10_jpeg.tar.gz")
    assert ds.class_names == catalog.CIFAR10_CLASSES and sorted(ds.y_train.tolist()) == list(range(10))
    # A plain tree one level down is found too (no archive named after "image_folder").
    assert load("image_folder", tmp_path).x_train.shape == (10, 32, 32, 3)


def test_nothing_found_lists_what_was_looked_for(tmp_path):
    (tmp_path / "notes.txt").write_text("no data here")
    with pytest.raises(DataError) as e:
        load("cifar10", tmp_path)
    _one_line_error(e, "cifar10.npz", "cifar10*.tar.gz", "cifar-10-batches-py/",
                    "train-images-idx3-ubyte", "train/<class>/")
    with pytest.raises(DataError) as e:
        load("mnist", tmp_path / "notes.txt")
    _one_line_error(e, "unknown type", ".npz")


def test_missing_path_and_missing_split(tmp_path):
    with pytest.raises(DataError) as e:
        load("mnist", tmp_path / "nowhere")
    _one_line_error(e, "does not exist", "pass an existing")
    (tmp_path / "tree" / "train" / "a").mkdir(parents=True)
    Image.fromarray(_images(1, (4, 4))[0]).save(tmp_path / "tree" / "train" / "a" / "x.png")
    with pytest.raises(DataError) as e:
        load("image_folder", tmp_path / "tree")
    _one_line_error(e, "no test images", "test/<class>/")


# ----------------------------------------------------------------------------- TFDS


def test_tfds_mocked_offline():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        ds = load("mnist", source="tfds", num_test=5)
    assert ds.source == "tfds:mnist"
    assert ds.x_train.shape == (12, 28, 28, 1) and ds.x_test.shape == (5, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and 0.0 <= ds.x_train.min() <= ds.x_train.max() <= 1.0
    assert ds.class_names == tuple("0123456789")


def test_tfds_prepares_and_reads_a_real_builder(tmp_path):
    # Not mocked: TFDS's own prepare step, which needs importlib_resources (a dependency).
    pytest.importorskip("tensorflow_datasets")
    from tfds_fixture import tiny_digits  # noqa: F401  (registers the builder)

    x_train, y_train, x_test, y_test, names = read_tfds("tiny_digits", data_dir=str(tmp_path))
    assert x_train.shape == (6, 8, 8, 1) and x_test.shape == (3, 8, 8, 1)
    assert sorted(y_train) == [0, 0, 1, 1, 2, 2] and names == ("a", "b", "c")


def test_tfds_not_prepared_is_a_clear_error(tmp_path):
    with pytest.raises(DataError) as e:
        read_tfds("mnist", data_dir=str(tmp_path), download=False)
    _one_line_error(e, "not prepared", "data_dir=")
    with pytest.raises(DataError) as e:
        load("image_folder", source="tfds")
    _one_line_error(e, "needs data_dir=")


def test_tfds_image_folder_builder(tmp_path):
    _write_tree(tmp_path / "tiny", classes=("b", "a"), per_split=(2, 1))
    ds = load("image_folder", tmp_path / "tiny", source="tfds")
    assert ds.source == "tfds:image_folder" and ds.class_names == ("a", "b")
    assert ds.x_train.shape == (4, 5, 7, 3) and ds.x_test.shape == (2, 5, 7, 3)


# ----------------------------------------------------------------------------- subsets


def test_classes_relabelled_in_given_order():
    full = load()
    pair = load(classes=(7, 1))
    assert pair.class_names == ("7", "1") and pair.num_classes == 2
    assert np.bincount(pair.y_train).tolist() == [600, 600]
    np.testing.assert_array_equal(pair.x_train[pair.y_train == 0], full.x_train[full.y_train == 7])
    np.testing.assert_array_equal(pair.x_test[pair.y_test == 1], full.x_test[full.y_test == 1])
    by_name = load(classes=("7", "1"))
    np.testing.assert_array_equal(by_name.y_train, pair.y_train)


def test_num_train_is_seeded():
    a = load(num_train=100, num_test=50, seed=3)
    b = load(num_train=100, num_test=50, seed=3)
    c = load(num_train=100, num_test=50, seed=4)
    assert a.x_train.shape == (100, 28, 28, 1) and a.x_test.shape == (50, 28, 28, 1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)
    x, y = random_subset(np.arange(10), np.arange(10), 4, seed=0)
    assert len(set(x.tolist())) == 4 and x.tolist() == sorted(x.tolist())


def test_validation_split_is_disjoint_and_fixed():
    x, y = np.arange(100)[:, None], np.arange(100)
    (x_tr, y_tr), (x_val, y_val) = validation_split(x, y, 20, seed=5)
    assert len(y_val) == 20 and len(y_tr) == 80
    assert not set(y_tr) & set(y_val) and set(y_tr) | set(y_val) == set(range(100))
    np.testing.assert_array_equal(x_val[:, 0], y_val)
    (_, y_tr2), (_, y_val2) = validation_split(x, y, 20, seed=5)
    np.testing.assert_array_equal(y_val, y_val2)
    assert not np.array_equal(validation_split(x, y, 20, seed=6)[1][1], y_val)
    with pytest.raises(DataError) as e:
        validation_split(x, y, 100)
    _one_line_error(e, "num_val=100", "lower num_val")


def test_binary_labels():
    np.testing.assert_array_equal(binary_labels(np.array([0, 1, 1])), [-1.0, 1.0, 1.0])
    assert binary_labels(np.array([0, 1]), "01").dtype == np.float32
    with pytest.raises(DataError) as e:
        binary_labels(np.array([0, 2]))
    _one_line_error(e, "{0, 1}", "classes=(a, b)")


# ----------------------------------------------------------------------------- pipelines


def _order(ds):
    return np.concatenate([yb.numpy() for _, yb in ds]).tolist()


def _paired_order(ds):
    """Labels in pipeline order; asserts every image still carries its own label.

    Image ``i`` is the constant ``i / 64`` (and ``y = i``), so a batch whose images and
    labels were shuffled or gathered apart shows up as a value mismatch.
    """
    order = []
    for xb, yb in ds:
        xb, yb = xb.numpy(), yb.numpy()
        assert xb.shape[1:] == (4, 4, 1)
        np.testing.assert_array_equal(xb, np.broadcast_to(yb[:, None, None, None] / 64, xb.shape)
                                      .astype(np.float32))
        order.extend(yb.tolist())
    return order


def test_train_pipeline_shuffle_is_reproducible():
    y = np.arange(50)
    x = np.broadcast_to((y / 64).astype(np.float32)[:, None, None, None], (50, 4, 4, 1)).copy()
    first = train_pipeline(x, y, 8, seed=1)
    epoch1, epoch2 = _paired_order(first), _paired_order(first)
    assert sorted(epoch1) == list(range(50)) and epoch1 != list(range(50))
    assert epoch1 != epoch2  # reshuffled every epoch
    again = train_pipeline(x, y, 8, seed=1)
    assert _paired_order(again) == epoch1 and _paired_order(again) == epoch2
    other = train_pipeline(x, y, 8, seed=2)
    other1 = _paired_order(other)
    assert sorted(other1) == list(range(50)) and other1 != epoch1
    assert _paired_order(train_pipeline(x, y, 8, shuffle=False)) == list(range(50))
    dropped = train_pipeline(x, y, 8, drop_remainder=True)
    assert [int(xb.shape[0]) for xb, _ in dropped] == [8] * 6
    assert len(set(_paired_order(dropped))) == 48  # 48 distinct samples, 2 dropped
    repeated = train_pipeline(x, y, 8, repeat=True, seed=3)
    stream = _paired_order(repeated.take(14))  # 112 labels: two full epochs and a bit
    assert sorted(stream[:50]) == list(range(50)) and sorted(stream[50:100]) == list(range(50))


def test_test_pipeline_keeps_order():
    x, y = RNG.random((10, 3, 3, 2)).astype(np.float32), np.arange(10)
    batches = list(test_pipeline(x, y, 4))
    assert [int(b[0].shape[0]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in batches]), x)
    assert _order(test_pipeline(x, y, 4)) == list(range(10))


def test_cifar_augment_shape_range_and_determinism():
    images = RNG.random((16, 32, 32, 3)).astype(np.float32)
    out = cifar_augment(images, seed=7).numpy()
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.array_equal(out, images)
    np.testing.assert_array_equal(out, cifar_augment(images, seed=7).numpy())
    assert not np.array_equal(out, cifar_augment(images, seed=8).numpy())
    # Every output is a shifted (possibly flipped) window of the zero-padded input.
    padded = np.pad(images, [(0, 0), (4, 4), (4, 4), (0, 0)])
    for img, aug in zip(padded, out):
        windows = [img[r:r + 32, c:c + 32] for r in range(9) for c in range(9)]
        assert any(np.array_equal(aug, w) or np.array_equal(aug, w[:, ::-1]) for w in windows)
    single = cifar_augment(images[0], seed=[1, 2], pad_mode="reflect")
    assert single.shape == (32, 32, 3)


def test_train_pipeline_augments_reproducibly():
    x = RNG.random((12, 8, 8, 3)).astype(np.float32)
    y = np.arange(12)
    plain = np.concatenate([xb.numpy() for xb, _ in train_pipeline(x, y, 4, shuffle=False)])
    aug = train_pipeline(x, y, 4, shuffle=False, augment=True, seed=3)
    a1 = np.concatenate([xb.numpy() for xb, _ in aug])
    a2 = np.concatenate([xb.numpy() for xb, _ in aug])
    again = np.concatenate([xb.numpy() for xb, _ in
                            train_pipeline(x, y, 4, shuffle=False, augment=True, seed=3)])
    assert a1.shape == plain.shape and 0.0 <= a1.min() and a1.max() <= 1.0
    assert not np.array_equal(a1, plain) and not np.array_equal(a1, a2)
    np.testing.assert_array_equal(a1, again)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("x, needles", [
    (np.full((2, 4, 4, 1), 255.0, np.float32),
     ("values up to 255.0", "expected [0, 1]", "divide uint8 pixels by 255")),
    (np.zeros((2, 4, 4), np.float32), ("shape (2, 4, 4)", "x[..., None]")),
    (np.zeros((2, 4, 4, 1), np.uint8), ("dtype uint8", "divide uint8 pixels by 255")),
    (np.zeros((0, 4, 4, 1), np.float32), ("empty", "at least one example")),
    (np.full((1, 2, 2, 1), np.nan, np.float32), ("NaN/Inf",)),
    (np.full((1, 2, 2, 1), -0.5, np.float32), ("down to -0.5", "normalisation")),
])
def test_check_images_errors(x, needles):
    with pytest.raises(DataError) as e:
        check_images(x)
    _one_line_error(e, *needles)


@pytest.mark.parametrize("y, needles", [
    (np.array([0, 10]), ("[0, 10]", "num_classes=10", "relabel")),
    (np.array([-1, 2]), ("[-1, 2]",)),
    (np.array([0.0, 1.0]), ("dtype float64", "astype(np.int64)")),
    (np.eye(3, dtype=np.int64), ("one-hot", "argmax")),
    (np.array([], dtype=np.int64), ("empty",)),
])
def test_check_labels_errors(y, needles):
    with pytest.raises(DataError) as e:
        check_labels(y, 10)
    _one_line_error(e, *needles)


def test_load_errors(tmp_path):
    cases = [
        (dict(name="svhn"), ("unknown dataset 'svhn'", "choose one of", ", ".join(DATASETS))),
        (dict(source="web"), ("unknown source 'web'",)),
        (dict(name="cifar10", source="embedded"), ("MNIST only", "data_dir=")),
        (dict(classes=(1, 12)), ("class 12 is not in mnist", "0..9")),
        (dict(classes=("seven",)), ("'seven' is not in mnist", "pick existing")),
        (dict(classes=(1, 1)), ("listed twice",)),
        (dict(num_train=6001), ("num_train=6001", "only 6000", "lower num_train")),
        (dict(num_test=0), ("num_test=0", "positive integer")),
    ]
    for kwargs, needles in cases:
        with pytest.raises(DataError) as e:
            load(**kwargs)
        _one_line_error(e, *needles)


def test_load_rejects_bad_files(tmp_path):
    np.savez(tmp_path / "a.npz", x_train=np.full((3, 4, 4), 255.0), y_train=np.zeros(3, int),
             x_test=np.zeros((2, 4, 4)), y_test=np.zeros(2, int))
    with pytest.raises(DataError) as e:
        load("mnist", tmp_path / "a.npz")
    _one_line_error(e, "mnist train images", "divide uint8 pixels by 255")
    np.savez(tmp_path / "b.npz", x_train=_images(3), y_train=np.array([0, 1, 11]),
             x_test=_images(2), y_test=np.zeros(2, int))
    with pytest.raises(DataError) as e:
        load("mnist", tmp_path / "b.npz")
    _one_line_error(e, "mnist train labels", "num_classes=10")
    np.savez(tmp_path / "c.npz", x_train=_images(3), y_train=np.zeros(2, int),
             x_test=_images(2), y_test=np.zeros(2, int))
    with pytest.raises(DataError) as e:
        load("mnist", tmp_path / "c.npz")
    _one_line_error(e, "3 images but 2 labels")
    np.savez(tmp_path / "d.npz", x_train=_images(3))
    with pytest.raises(DataError) as e:
        load("mnist", tmp_path / "d.npz")
    _one_line_error(e, "lacks arrays", "np.savez")
    _write_npz(tmp_path / "e.npz", num_classes=3)
    with pytest.raises(DataError) as e:
        load("mnist", tmp_path / "e.npz", classes=(1, 5))
    _one_line_error(e, "have no train examples", "pick classes present")


def test_reader_class_order_is_mapped_to_canonical_order():
    shuffled = tuple(reversed(catalog.CIFAR10_CLASSES))
    names, y_train, y_test = sources._reorder_canonical(
        "cifar10", shuffled, np.array([0, 9]), np.array([1]))
    assert names == catalog.CIFAR10_CLASSES
    assert y_train.tolist() == [9, 0] and y_test.tolist() == [8]
    unknown = ("x", "y")
    assert sources._reorder_canonical("image_folder", unknown, y_train, y_test)[0] == unknown


def test_discovery_picks_the_reader_for_each_kind_of_data_dir(tmp_path):
    """tfsparse.data.discovery: which reader a data_dir resolves to, checked on files we write."""
    from tfsparse.data import discovery
    from tfsparse.data import readers

    arrays = {"x_train": np.zeros((4, 28, 28), np.uint8), "y_train": np.arange(4, dtype=np.uint8),
              "x_test": np.zeros((2, 28, 28), np.uint8), "y_test": np.arange(2, dtype=np.uint8)}
    np.savez(tmp_path / "mnist.npz", **arrays)
    assert discovery._find_local("mnist", str(tmp_path)) == (readers.read_npz, str(tmp_path / "mnist.npz"))
    assert discovery._find_local("mnist", str(tmp_path / "mnist.npz"))[0] is readers.read_npz
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="unknown type"):
        discovery._find_local("mnist", str(tmp_path / "notes.txt"))
    with pytest.raises(DataError, match="no cifar10 data"):
        discovery._find_local("cifar10", str(tmp_path))


def test_readers_read_npz_returns_the_arrays_written(tmp_path):
    """tfsparse.data.readers.read_npz: the raw arrays back unchanged, class names when given."""
    from tfsparse.data import readers

    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), "y_train": np.arange(5),
              "x_test": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), "y_test": np.arange(3)}
    np.savez(tmp_path / "a.npz", **arrays, class_names=np.array([f"c{i}" for i in range(5)]))
    x_train, y_train, x_test, y_test, names = readers.read_npz(str(tmp_path / "a.npz"))
    for got, key in zip((x_train, y_train, x_test, y_test), ("x_train", "y_train", "x_test", "y_test")):
        np.testing.assert_array_equal(got, arrays[key])
    assert list(names) == [f"c{i}" for i in range(5)]
    with pytest.raises(DataError, match="does not exist"):
        readers.read_npz(str(tmp_path / "missing.npz"))
