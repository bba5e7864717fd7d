"""The old import path of :class:`~servewell.training.features.DerivedFeatures`.

A trained scikit-learn pipeline with derived features pickles its transformer by module
path; models registered before the training code moved to ``servewell.training`` name
this one, so it stays for them to unpickle. New code imports ``servewell.training``.
"""

from servewell.training.features import DerivedFeatures

__all__ = ["DerivedFeatures"]
