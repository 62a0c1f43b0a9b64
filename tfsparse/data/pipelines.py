"""tf.data pipelines, CIFAR augmentation, binary digit-pair labels, splits and subsets."""

import numpy as np

from tfsparse.compat import tf
from tfsparse.data.checks import DataError
from tfsparse.data.checks import check_images

AUTOTUNE = tf.data.AUTOTUNE


def binary_labels(y01, style="pm1"):
    """Turns {0, 1} labels into Guo et al.'s binary targets, float32.

    ``style="pm1"`` gives -1/+1 (class 0 -> -1), the convention of the paper's linear-model and
    digit-pair ("1" vs "7", "0" vs "8") experiments; ``"01"`` keeps 0/1 for a sigmoid loss.
    Load the pair first, e.g. ``load("mnist", classes=(1, 7))``.
    """
    y01 = np.asarray(y01)
    if style not in ("pm1", "01"):
        raise DataError(f"unknown binary label style {style!r}; choose 'pm1' or '01'")
    if y01.ndim != 1 or not np.all(np.isin(y01, (0, 1))):
        raise DataError(f"binary_labels expects 1-D labels in {{0, 1}}, got shape {y01.shape} "
                        f"with values {np.unique(y01)[:5].tolist()}; load a pair with "
                        f"classes=(a, b) first")
    y = y01.astype(np.float32)
    return 2.0 * y - 1.0 if style == "pm1" else y


def validation_split(x, y, num_val, seed=0):
    """Splits off a fixed, seeded validation set: ``((x_tr, y_tr), (x_val, y_val))``.

    Used for Stop-C style early stopping, which must watch data the model never trains on;
    the same seed always gives the same split. Both parts keep the original order.
    """
    n = len(x)
    if len(y) != n:
        raise DataError(f"validation_split got {n} images but {len(y)} labels; pass one label "
                        f"per image")
    if not isinstance(num_val, (int, np.integer)) or isinstance(num_val, bool) \
            or not 0 < num_val < n:
        raise DataError(f"num_val={num_val!r} must be an integer in [1, {n - 1}] for {n} "
                        f"examples; lower num_val so some training data remains")
    perm = np.random.default_rng(seed).permutation(n)
    val, train = np.sort(perm[:num_val]), np.sort(perm[num_val:])
    return (x[train], y[train]), (x[val], y[val])


def random_subset(x, y, num, seed=0, *, what="num"):
    """A seeded random subset of ``num`` examples, without replacement, in the original order.

    For quick runs and small evaluations (e.g. attacks on 1,000 test images): the same seed
    always picks the same examples. ``num=None`` returns everything; ``what`` names the
    argument in error messages.
    """
    if num is None:
        return x, y
    if not isinstance(num, (int, np.integer)) or isinstance(num, bool) or num < 1:
        raise DataError(f"{what}={num!r} must be a positive integer or None (all examples)")
    if num > len(x):
        raise DataError(f"{what}={num} but only {len(x)} examples are available; lower {what} "
                        f"or pass None for all")
    idx = np.sort(np.random.default_rng(seed).choice(len(x), int(num), replace=False))
    return x[idx], y[idx]


def cifar_augment(images, seed, *, pad=4, pad_mode="zero"):
    """Standard CIFAR augmentation: pad ``pad`` pixels, random crop back to size, random h-flip.

    ``images`` is one image (H, W, C) or a batch (B, H, W, C); each image gets its own crop
    offset and flip. ``seed`` is an int or a shape-[2] integer tensor; the ops are stateless,
    so the same seed gives the same result (reproducible, and safe in parallel tf.data maps).
    ``pad_mode`` is ``"zero"`` (as in the usual RandomCrop(32, padding=4)) or ``"reflect"``.
    """
    if pad_mode not in ("zero", "reflect"):
        raise DataError(f"unknown pad_mode {pad_mode!r}; choose 'zero' or 'reflect'")
    images = tf.convert_to_tensor(images)
    single = images.shape.rank == 3
    if single:
        images = images[None]
    if images.shape.rank != 4:
        raise DataError(f"cifar_augment expects (H, W, C) or (B, H, W, C) images, got shape "
                        f"{images.shape}; add or remove a batch axis")
    if isinstance(seed, (int, np.integer)):
        seed = [int(seed), 0]
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    crop_seed_y, crop_seed_x, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=3))
    batch, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    mode = "CONSTANT" if pad_mode == "zero" else "REFLECT"
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode=mode)
    off_y = tf.random.stateless_uniform([batch], crop_seed_y, 0, 2 * pad + 1, dtype=tf.int32)
    off_x = tf.random.stateless_uniform([batch], crop_seed_x, 0, 2 * pad + 1, dtype=tf.int32)
    rows = off_y[:, None] + tf.range(height)[None, :]
    cols = off_x[:, None] + tf.range(width)[None, :]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    out = tf.gather(out, cols, axis=2, batch_dims=1)
    flip = tf.random.stateless_uniform([batch], flip_seed) < 0.5
    out = tf.where(flip[:, None, None, None], tf.reverse(out, axis=[2]), out)
    return out[0] if single else out


def _check_xy(x, y, batch_size, caller):
    check_images(x, f"{caller} images")
    y = np.asarray(y)
    if y.ndim < 1 or len(y) != len(x):
        raise DataError(f"{caller} got {len(x)} images but labels of shape {y.shape}; pass one "
                        f"label per image")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) \
            or batch_size < 1:
        raise DataError(f"{caller} batch_size={batch_size!r} must be a positive integer")
    return y


def _gather_batches(indices, x, y):
    """Maps batches of indices to (images, labels) by gathering from in-memory tensors.

    Shuffling indices instead of images keeps the shuffle buffer tiny even for CIFAR.
    """
    x_t, y_t = tf.constant(x), tf.constant(y)
    return indices.map(lambda idx: (tf.gather(x_t, idx), tf.gather(y_t, idx)),
                       num_parallel_calls=AUTOTUNE, deterministic=True)


def train_pipeline(x, y, batch_size, *, seed=0, augment=False, shuffle=True, repeat=False,
                   drop_remainder=False) -> tf.data.Dataset:
    """A training ``tf.data.Dataset`` of (images, labels) batches from in-memory arrays.

    The full-dataset shuffle uses ``seed`` and reshuffles every epoch, so a given seed gives
    the same sequence of epochs (as with all tf.data randomness, the global
    ``tf.random.set_seed`` also enters). ``augment=True`` applies :func:`cifar_augment` per
    batch with stateless seeds drawn from ``seed`` (different every epoch, same every run).
    ``repeat=True`` makes it infinite; batches are prefetched.
    """
    y = _check_xy(x, y, batch_size, "train_pipeline")
    ds = tf.data.Dataset.range(len(x))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = _gather_batches(ds.batch(batch_size, drop_remainder=drop_remainder), x, y)
    if augment:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda xy, s: (cifar_augment(xy[0], s), xy[1]),
            num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.prefetch(AUTOTUNE)


def test_pipeline(x, y, batch_size) -> tf.data.Dataset:
    """An evaluation ``tf.data.Dataset``: fixed order, no shuffling or augmentation, prefetched."""
    y = _check_xy(x, y, batch_size, "test_pipeline")
    ds = _gather_batches(tf.data.Dataset.range(len(x)).batch(batch_size), x, y)
    return ds.prefetch(AUTOTUNE)


# The name starts with "test": stop pytest from collecting it wherever it is imported.
test_pipeline.__test__ = False
