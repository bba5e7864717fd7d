"""Adaptive batching: a bounded queue that coalesces concurrent work. Knows nothing of
HTTP or models."""

from servewell.batching.queue import CANCELLED, DEADLINE, BatchPolicy, BatchQueue, BatchStats

__all__ = ["CANCELLED", "DEADLINE", "BatchPolicy", "BatchQueue", "BatchStats"]
