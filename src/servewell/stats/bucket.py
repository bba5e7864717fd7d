"""What one model version (and arm) logged in one time bucket, as fixed-size sketches:
counts, first and last time, a latency :class:`~servewell.stats.quantile.QuantileSketch`,
and a histogram per judged feature and of the predictions on the reference's bins.

A :class:`Histogram` is a sketch of :mod:`servewell.stats.sketch` without its bins (its
``layout`` names them), so buckets merge, pack and unpack where the reference is not at
hand (a compaction in the registry); a report turns each back into the reference's
sketch (:meth:`Histogram.to_dict`, then the reference's ``sketch_from_dict``, which
refuses other bins).

:meth:`Bucket.to_bytes` packs a bucket small: a JSON header, then each histogram's
non-empty bins as little-endian arrays (bin numbers and counts in the narrowest types
that hold them, and sums for numbers).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from servewell.errors import InvalidData
from servewell.stats.quantile import LAYOUT as LATENCY_LAYOUT
from servewell.stats.quantile import QuantileSketch
from servewell.stats.sketch import CategoricalSketch, NumericSketch

Array = np.ndarray[Any, Any]
_MAGIC = b"SWB1"
_HEAD = struct.Struct("<4sI")


@dataclass(slots=True)
class Histogram:
    """A numeric or categorical sketch's counts (and sums), named by its bins' layout."""

    kind: str
    layout: str
    counts: Array
    sums: Array | None
    missing: int

    @classmethod
    def of(cls, sketch: NumericSketch | CategoricalSketch) -> Histogram:
        sums = sketch.sums if isinstance(sketch, NumericSketch) else None
        kind = "numeric" if sums is not None else "categorical"
        return cls(kind, sketch.layout, sketch.counts, sums, sketch.missing)

    def merge(self, other: Histogram) -> Histogram:
        if (other.kind, other.layout, len(other.counts)) != (
            self.kind,
            self.layout,
            len(self.counts),
        ):
            raise InvalidData("histograms on different bins do not merge")
        sums = None if self.sums is None or other.sums is None else self.sums + other.sums
        return Histogram(
            self.kind, self.layout, self.counts + other.counts, sums, self.missing + other.missing
        )

    def to_dict(self) -> dict[str, Any]:
        """As the sketch's own ``to_dict`` (arrays, not lists)."""
        found: dict[str, Any] = {
            "kind": self.kind,
            "layout": self.layout,
            "counts": self.counts,
            "missing": self.missing,
        }
        if self.sums is not None:
            found["sums"] = self.sums
        return found


@dataclass(slots=True)
class Bucket:
    """One (model, version, arm)'s logged predictions in one time bucket."""

    logged: int = 0
    cached: int = 0
    first_at: float = math.inf
    last_at: float = -math.inf
    latency: QuantileSketch = field(default_factory=QuantileSketch)
    features: dict[str, Histogram] = field(default_factory=dict)
    prediction: Histogram | None = None
    unreadable: dict[str, str] = field(default_factory=dict)
    """Features whose logged values could not be sketched, and why."""

    def merge(self, other: Bucket) -> Bucket:
        features = dict(self.features)
        for name, found in other.features.items():
            features[name] = features[name].merge(found) if name in features else found
        prediction = self.prediction if other.prediction is None else other.prediction
        if self.prediction is not None and other.prediction is not None:
            prediction = self.prediction.merge(other.prediction)
        return Bucket(
            self.logged + other.logged,
            self.cached + other.cached,
            min(self.first_at, other.first_at),
            max(self.last_at, other.last_at),
            self.latency.merge(other.latency),
            features,
            prediction,
            {**self.unreadable, **other.unreadable},
        )

    def to_bytes(self) -> bytes:
        arrays: list[bytes] = []
        latency = _pack_counts(self.latency.counts, None, arrays)
        header = {
            "logged": self.logged,
            "cached": self.cached,
            "first_at": _finite(self.first_at),
            "last_at": _finite(self.last_at),
            "latency": {
                **latency,
                "low": _finite(self.latency.low),
                "high": _finite(self.latency.high),
            },
            "features": {name: _pack(found, arrays) for name, found in self.features.items()},
            "prediction": None if self.prediction is None else _pack(self.prediction, arrays),
            "unreadable": self.unreadable,
        }
        text = orjson.dumps(header)
        return _HEAD.pack(_MAGIC, len(text)) + text + b"".join(arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> Bucket:
        """The bucket ``to_bytes`` packed; anything else is :class:`InvalidData`."""
        try:
            magic, size = _HEAD.unpack_from(data)
            if magic != _MAGIC:
                raise ValueError("not a packed bucket")
            header = orjson.loads(data[_HEAD.size : _HEAD.size + size])
            reader = _Reader(memoryview(data), _HEAD.size + size)
            return cls._unpacked(header, reader)
        except (ValueError, KeyError, TypeError, struct.error) as exc:
            raise InvalidData(f"a stored window sketch does not unpack: {exc}") from None

    @classmethod
    def _unpacked(cls, header: dict[str, Any], reader: _Reader) -> Bucket:
        latency = header["latency"]
        counts, _ = reader.counts(latency, with_sums=False)
        if latency["layout"] != LATENCY_LAYOUT:
            raise ValueError(f"latency sketched on other bins ({latency['layout']})")
        low, high = latency["low"], latency["high"]
        sketch = QuantileSketch(
            counts, math.inf if low is None else low, -math.inf if high is None else high
        )
        features = {name: reader.histogram(entry) for name, entry in header["features"].items()}
        found = header["prediction"]
        prediction = None if found is None else reader.histogram(found)
        first, last = header["first_at"], header["last_at"]
        return cls(
            header["logged"],
            header["cached"],
            math.inf if first is None else first,
            -math.inf if last is None else last,
            sketch,
            features,
            prediction,
            dict(header["unreadable"]),
        )


def _pack(histogram: Histogram, arrays: list[bytes]) -> dict[str, Any]:
    entry = _pack_counts(histogram.counts, histogram.sums, arrays)
    entry.update(kind=histogram.kind, layout=histogram.layout, missing=histogram.missing)
    return entry


def _pack_counts(counts: Array, sums: Array | None, arrays: list[bytes]) -> dict[str, Any]:
    """The non-empty bins' numbers, counts (and sums) appended to ``arrays``, each in the
    narrowest type that holds it (a day of hours is tens of megabytes otherwise)."""
    filled = np.flatnonzero(counts)
    where = "<u2" if len(counts) <= 1 << 16 else "<u4"
    kept = counts[filled]
    wide = "<u4" if not len(kept) or int(kept.max()) < 1 << 32 else "<i8"
    arrays.append(filled.astype(where).tobytes())
    arrays.append(kept.astype(wide).tobytes())
    if sums is not None:
        arrays.append(sums[filled].astype("<f8").tobytes())
    return {
        "layout": LATENCY_LAYOUT,
        "size": len(counts),
        "filled": len(filled),
        "types": [where, wide],
    }


class _Reader:
    """Reads the arrays after a packed bucket's header, in order."""

    def __init__(self, data: memoryview, offset: int) -> None:
        self.data = data
        self.offset = offset

    def take(self, dtype: str, count: int) -> Array:
        array = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.offset)
        self.offset += array.nbytes
        return array

    def counts(self, entry: dict[str, Any], *, with_sums: bool) -> tuple[Array, Array | None]:
        size, filled = int(entry["size"]), int(entry["filled"])
        index_type, count_type = entry["types"]
        if index_type not in ("<u2", "<u4") or count_type not in ("<u4", "<i8"):
            raise ValueError(f"unknown array types {entry['types']}")
        where = self.take(index_type, filled)
        if filled and int(where.max()) >= size:
            raise ValueError("a bin number past the sketch's bins")
        counts = np.zeros(size, np.int64)
        counts[where] = self.take(count_type, filled)
        if not with_sums:
            return counts, None
        sums = np.zeros(size, np.float64)
        sums[where] = self.take("<f8", filled)
        return counts, sums

    def histogram(self, entry: dict[str, Any]) -> Histogram:
        kind = entry["kind"]
        counts, sums = self.counts(entry, with_sums=kind == "numeric")
        return Histogram(kind, str(entry["layout"]), counts, sums, int(entry["missing"]))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
