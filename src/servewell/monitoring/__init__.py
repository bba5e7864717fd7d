"""Quality and drift of a model over windows of its prediction log, off the request path.

:func:`~servewell.monitoring.run.monitor` reads a window of logged predictions (and the
labels joined to them) from the registry database page by page, and reports, per
version and arm: quality on the labelled rows (:mod:`servewell.stats`' metrics), label
coverage, latency percentiles, and each feature's drift against the version's training
reference (sketches fed page by page, :mod:`servewell.stats.reference`'s tests), for
the whole window and for each of its slices over time.
"""
