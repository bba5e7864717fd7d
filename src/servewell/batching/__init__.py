"""Adaptive batching: a bounded queue that coalesces concurrent work. Knows nothing of
HTTP or models."""

from servewell.batching.queue import BatchPolicy, BatchQueue, BatchStats

__all__ = ["BatchPolicy", "BatchQueue", "BatchStats"]
