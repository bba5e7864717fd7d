"""Models trained before the training code moved still load: their pickles name the
derived-features transformer by its old module path, ``servewell.pipeline.features``."""

from __future__ import annotations

import pickle

import pandas as pd

from servewell.training.features import DerivedFeatures

OLD, NEW = b"servewell.pipeline.features", b"servewell.training.features"


def test_a_pickle_naming_the_old_module_loads_and_transforms_alike() -> None:
    features = DerivedFeatures([{"name": "ratio", "ratio": ["a", "b"]}])
    frame = pd.DataFrame({"a": [1.0, 4.0], "b": [2.0, 8.0]})
    features.fit(frame)
    new_bytes = pickle.dumps(features)
    assert NEW in new_bytes
    assert len(OLD) == len(NEW)  # the same length: the pickle's framing holds
    old_bytes = new_bytes.replace(NEW, OLD)
    loaded = pickle.loads(old_bytes)
    pd.testing.assert_frame_equal(loaded.transform(frame), features.transform(frame))
