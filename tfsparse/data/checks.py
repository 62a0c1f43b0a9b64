"""Validation of image and label arrays, with one-line errors that say what to change."""

import numpy as np

from tfsparse.errors import DataError  # noqa: F401  (re-exported: tfsparse.data.DataError)


def check_images(x, what="images") -> None:
    """Checks that ``x`` is a non-empty float NHWC array with finite values in [0, 1].

    Every attack budget in tfsparse is in [0, 1] pixel units (SPEC §1), so an array of
    0-255 values or a missing channel axis would silently make results meaningless; this
    catches them where the data enters the library.
    """
    if not isinstance(x, np.ndarray):
        raise DataError(f"{what} must be a NumPy array, got {type(x).__name__}; "
                        f"convert with np.asarray(x, dtype=np.float32)")
    if x.dtype not in (np.float32, np.float64):
        hint = "divide uint8 pixels by 255" if x.dtype == np.uint8 else "cast to float32"
        raise DataError(f"{what} have dtype {x.dtype}; expected float32 or float64 in [0, 1]: "
                        f"{hint}")
    if x.ndim != 4:
        hint = ("add a channel axis with x[..., None]" if x.ndim == 3
                else "reshape to (num_examples, height, width, channels)")
        raise DataError(f"{what} have shape {x.shape}; expected 4-D NHWC "
                        f"(num_examples, height, width, channels): {hint}")
    if x.shape[0] == 0:
        raise DataError(f"{what} are empty (shape {x.shape}); pass at least one example, "
                        f"e.g. check the split, the classes filter or num_train/num_test")
    if min(x.shape[1:]) == 0:
        raise DataError(f"{what} have shape {x.shape} with a zero-sized image axis; "
                        f"expected (num_examples, height, width, channels) with all sizes >= 1")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{what} contain {int(np.size(x) - np.isfinite(x).sum())} NaN/Inf values; "
                        f"remove or repair those examples")
    lo, hi = float(x.min()), float(x.max())
    if hi > 1.0:
        hint = ("divide uint8 pixels by 255" if hi <= 255.0
                else "rescale the data to [0, 1]")
        raise DataError(f"{what} have values up to {hi}; expected [0, 1]: {hint}")
    if lo < 0.0:
        raise DataError(f"{what} have values down to {lo}; expected [0, 1]: undo any mean/std "
                        f"normalisation (tfsparse normalises inside the model)")


def check_labels(y, num_classes, what="labels") -> None:
    """Checks that ``y`` is a non-empty 1-D integer array with 0 <= y < num_classes.

    The caller checks that labels and images have the same length.
    """
    if not isinstance(y, np.ndarray):
        raise DataError(f"{what} must be a NumPy array, got {type(y).__name__}; "
                        f"convert with np.asarray(y, dtype=np.int64)")
    if y.ndim == 2 and y.shape[1] > 1:
        raise DataError(f"{what} have shape {y.shape}, which looks one-hot; expected 1-D class "
                        f"indices: use y.argmax(axis=1)")
    if y.ndim != 1:
        raise DataError(f"{what} have shape {y.shape}; expected 1-D class indices: "
                        f"use y.reshape(-1)")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{what} have dtype {y.dtype}; expected integer class indices: "
                        f"cast with y.astype(np.int64)")
    if y.shape[0] == 0:
        raise DataError(f"{what} are empty; pass at least one example, e.g. check the split, "
                        f"the classes filter or num_train/num_test")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= num_classes:
        raise DataError(f"{what} range over [{lo}, {hi}] but num_classes={num_classes}; expected "
                        f"0 <= label < {num_classes}: relabel to 0..{num_classes - 1} "
                        f"or raise num_classes")


def check_pair(x, y, num_classes, what="data") -> None:
    """Checks images and labels together, including that they have the same length."""
    check_images(x, f"{what} images")
    check_labels(y, num_classes, f"{what} labels")
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{what} has {x.shape[0]} images but {y.shape[0]} labels; "
                        f"pass one label per image")


def check_splits(x_train, y_train, x_test, y_test, where) -> None:
    """Checks that the splits a file holds agree: one label per image, one image shape in both.

    Called by every reader on what it read, so the message names the file (``where``) whose
    arrays disagree, before any conversion; a shape of (N, H, W) and (N, H, W, 1) agree.
    """
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        n_x, n_y = _length(x), _length(y)
        if n_x != n_y:
            raise DataError(f"{where}: its {split} split has {n_x} images but {n_y} labels; the file's "
                            f"x_{split} and y_{split} must be of one length (one label per image)")
    if _image_shape(x_train) != _image_shape(x_test):
        train, test = tuple(np.shape(x_train)[1:]), tuple(np.shape(x_test)[1:])
        raise DataError(f"{where}: its train images are {train} but its test images are {test}; both "
                        "splits must hold images of one shape (of one dataset)")


def _length(a):
    shape = np.shape(a)
    return shape[0] if shape else 0


def _image_shape(x):
    shape = tuple(np.shape(x)[1:])
    return shape[:-1] if len(shape) == 3 and shape[-1] == 1 else shape


def check_batch_size(batch_size, num_examples, key="train.batch_size") -> None:
    """Refuses a training batch larger than the training set, before any work.

    Such a batch is the whole set, so the value cannot mean what it says; and tf.data reserves
    room for a batch of the size asked, so ``batch_size=100000000`` exhausted memory after five
    minutes of set-up and training (issue 30, item 8). The memory a batch that fits the set
    needs is not estimated here (it depends on the model's activations); it is this bound that
    turns the typo of an extra zero into one line.
    """
    if batch_size > num_examples:
        raise DataError(f"{key} is {batch_size}, more than the {num_examples} training images; choose at most "
                        f"{num_examples} (or more training data)")

