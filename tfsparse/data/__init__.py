"""Data for tfsparse (SPEC §2): ``load()`` from the embedded MNIST sample, local files or TFDS,
tf.data pipelines with seeded shuffling and CIFAR augmentation, and validation with clear errors.
"""

from tfsparse.data.checks import DataError
from tfsparse.data.checks import check_images
from tfsparse.data.checks import check_labels
from tfsparse.data.pipelines import binary_labels
from tfsparse.data.pipelines import cifar_augment
from tfsparse.data.pipelines import random_subset
from tfsparse.data.pipelines import test_pipeline
from tfsparse.data.pipelines import train_pipeline
from tfsparse.data.pipelines import validation_split
from tfsparse.data.catalog import DATASETS
from tfsparse.data.catalog import Dataset
from tfsparse.data.image_folder import read_image_folder
from tfsparse.data.readers import read_cifar_pickle
from tfsparse.data.readers import read_idx
from tfsparse.data.readers import read_npz
from tfsparse.data.readers import read_tfds
from tfsparse.data.sources import load

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "binary_labels",
    "check_images",
    "check_labels",
    "cifar_augment",
    "load",
    "random_subset",
    "read_cifar_pickle",
    "read_idx",
    "read_image_folder",
    "read_npz",
    "read_tfds",
    "test_pipeline",
    "train_pipeline",
    "validation_split",
]
