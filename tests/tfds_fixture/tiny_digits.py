"""A three-class TFDS dataset made on the spot (no download): the real TFDS prepare-and-read path.

It lives in a package (``tfds_fixture.tiny_digits``) because TFDS resolves the code path of a
builder defined in a package module through ``importlib_resources``, the path that failed for
want of that dependency (issue 30, item 11).
"""

import numpy as np
import tensorflow_datasets as tfds


class TinyDigits(tfds.core.GeneratorBasedBuilder):
    """8×8 grey images, labels 0-2; 6 train and 3 test examples."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(8, 8, 1)),
                                                 "label": tfds.features.ClassLabel(names=["a", "b", "c"])}),
            supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(6, 0), "test": self._generate_examples(3, 1)}

    def _generate_examples(self, count, seed):
        rng = np.random.default_rng(seed)
        for index in range(count):
            yield index, {"image": rng.integers(0, 256, (8, 8, 1), dtype=np.uint8), "label": index % 3}
