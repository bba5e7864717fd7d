"""What runs the training pipeline again for a registered model: ``servewell retrain``
(:mod:`~servewell.pipeline.retrain`), the logged rows it may learn from
(:mod:`~servewell.pipeline.labelled_log`) and the challenger's comparison with its
champion (:mod:`~servewell.pipeline.challenge`). ``features`` is only the old import path
of the training code's derived features, kept so models pickled before it moved load."""
