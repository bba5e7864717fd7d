"""The prediction log's stores (the registry database's table and Parquet files), each on
both database backends: rows, labels joined by request id, relabelling, unknown ids,
pruning, paging a window. One suite: every store must pass it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

from servewell.bootstrap import Services, build_services
from servewell.registry import schema
from servewell.registry.feedback import UNKNOWN_SHOWN
from servewell.registry.prediction_store import PredictionStore, open_prediction_store
from servewell.registry.predictions import PredictionRow, SqlPredictionStore
from servewell.settings import MonitoringSettings, Settings


@pytest.fixture(params=["database", "parquet"])
def store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[PredictionStore]:
    """Each store, writing every batch at once (a Parquet file per write)."""
    monitoring = {"store": request.param, "parquet_file_rows": 1}
    services: Services = build_services(
        settings.model_copy(update={"monitoring": MonitoringSettings(**monitoring)})
    )
    yield open_prediction_store(services)
    services.close()


@pytest.fixture
def sql_store(settings: Settings) -> Iterator[SqlPredictionStore]:
    services: Services = build_services(settings)
    yield SqlPredictionStore(services.registry)
    services.close()


def _row(request_id: str, days_ago: float = 0, model: str = "fraud") -> PredictionRow:
    at = (datetime.now(UTC) - timedelta(days=days_ago)).timestamp()
    return PredictionRow(at, request_id, model, 1, None, None, 2.0, False, '{"label": [1]}', None)


def test_rows_since_oldest_first_per_model(store: PredictionStore) -> None:
    store.write([_row("a", 3), _row("b", 1), _row("c"), _row("x", model="other")])
    since = datetime.now(UTC) - timedelta(days=2)
    assert [row.request_id for row in store.rows("fraud", since)] == ["b", "c"]
    assert [row.request_id for row in store.rows("fraud")] == ["a", "b", "c"]
    assert [row.request_id for row in store.rows("fraud", limit=2)] == ["b", "c"]
    assert store.rows("fraud")[0].outputs == {"label": [1]}


def test_labels_join_replace_and_report_unknown_ids(store: PredictionStore) -> None:
    store.write([_row("a"), _row("b"), _row("a-other", model="other")])
    result = store.label("fraud", [("a", 0), ("b", "spam"), ("a", 1), ("a-other", 1)])
    assert result.accepted == 2  # "a" once: the last label given wins
    assert (result.unknown, result.unknown_count) == (["a-other"], 1)  # another model's
    assert store.label("fraud", [("b", "ham")]).accepted == 1
    assert store.label("fraud", [("b", "ham")]).accepted == 1  # the same again: no change
    assert [(row.request_id, row.label) for row in store.rows("fraud")] == [
        ("a", 1),
        ("b", "ham"),
    ]
    assert store.rows("other")[0].label is None


def test_many_unknown_ids_are_counted_and_the_first_named(store: PredictionStore) -> None:
    store.write([_row("known")])
    labels = [(f"u{n}", 1) for n in range(1200)] + [("known", 1)]
    result = store.label("fraud", labels)
    assert result.accepted == 1
    assert result.unknown_count == 1200
    assert result.unknown == [f"u{n}" for n in range(UNKNOWN_SHOWN)]


def test_prune_deletes_old_predictions_and_labels(store: PredictionStore) -> None:
    store.write([_row("old", 40), _row("new", 1)])
    store.label("fraud", [("old", 1), ("new", 0)])
    assert store.prune(datetime.now(UTC) - timedelta(days=30)) == 1
    assert [row.request_id for row in store.rows("fraud")] == ["new"]
    assert store.rows("fraud")[0].label == 0


def test_prune_deletes_in_batches_until_none_is_left(store: PredictionStore) -> None:
    old = [_row(f"old-{n}", 40 + n / 10) for n in range(25)]
    store.write([*old, _row("new", 1), _row("other-old", 40, model="other")])
    store.label("fraud", [(row.request_id, 1) for row in old[:7]])
    with store.registry.read() as conn:  # labels received long ago, as after a month
        long_ago = datetime.now(UTC) - timedelta(days=40)
        conn.execute(update(schema.feedback).values(received_at=long_ago))
    assert store.prune(datetime.now(UTC) - timedelta(days=30), batch_rows=4) == 26
    assert [row.request_id for row in store.rows("fraud")] == ["new"]
    assert store.rows("other") == []
    store.write([_row("old-0", 0)])  # the id logged again: its old label went with it
    assert store.rows("fraud")[0].label is None


def test_scan_pages_through_a_window_oldest_first(store: PredictionStore) -> None:
    at = datetime.now(UTC).timestamp()
    same = [
        PredictionRow(at, f"t{n}", "fraud", 1 + n % 2, None, None, 1.0, False, None, None)
        for n in range(5)
    ]
    store.write([_row("old", 3), *same, _row("other", model="other")])
    store.label("fraud", [("t3", 1)])

    def ids(**options: object) -> list[list[str]]:
        return [
            [row.request_id for row in page] for page in store.scan("fraud", page_rows=2, **options)
        ]

    assert ids() == [["old", "t0"], ["t1", "t2"], ["t3", "t4"]]  # ties on time: by id
    assert ids(since=datetime.now(UTC) - timedelta(days=1)) == [["t0", "t1"], ["t2", "t3"], ["t4"]]
    assert ids(newest=3) == [["t2", "t3"], ["t4"]]
    assert ids(newest=3, version=2) == [["t1", "t3"]]  # version 2 has only two
    assert ids(newest=100) == [["old", "t0"], ["t1", "t2"], ["t3", "t4"]]
    [labelled] = [row for page in store.scan("fraud") for row in page if row.label is not None]
    assert labelled.request_id == "t3"


def test_every_column_round_trips(store: PredictionStore) -> None:
    """The columns as written (PostgreSQL's binary COPY sends each as its type)."""
    at = datetime.now(UTC).timestamp()
    hit = PredictionRow(at, "r" * 128, "fraud", 7, "challenger", "team-a", 1.5, True, None, None)
    answered = PredictionRow(at, "é-id", "fraud", 2, None, None, 0.25, False, '{"p": [0.5]}', "[]")
    store.write([hit, answered])
    first, second = store.rows("fraud")
    assert (first.request_id, first.version, first.arm, first.key_name) == (
        "r" * 128,
        7,
        "challenger",
        "team-a",
    )
    assert (first.latency_ms, first.cached, first.outputs, first.inputs) == (1.5, True, None, None)
    assert abs(first.logged_at.timestamp() - at) < 1e-3
    assert (second.request_id, second.cached, second.outputs, second.inputs) == (
        "é-id",
        False,
        {"p": [0.5]},
        [],
    )


def test_batches_of_every_shape_round_trip(store: PredictionStore) -> None:
    """A column None in every row of a batch, and cached the same in every row, are
    written as literals on SQLite (not bound per row): each batch reads back as written,
    whichever columns are all None, all set or mixed."""
    at = datetime.now(UTC).timestamp()
    answered = PredictionRow(at, "a", "fraud", 1, None, None, 1.0, False, '{"p": [1]}', "[2]")
    hit = PredictionRow(at, "h", "fraud", 1, None, None, 1.0, True, None, None)
    routed = answered._replace(arm="b", key_name="team-a", inputs=None)
    batches = [[answered] * 2, [hit] * 2, [answered, hit], [routed, answered], [hit, routed]]
    written: list[PredictionRow] = []
    for n, batch in enumerate(batches):
        rows = [row._replace(request_id=f"{n}-{i}", at=at + n) for i, row in enumerate(batch)]
        store.write(rows)
        written += rows
    found = {row.request_id: row for row in store.rows("fraud")}
    for row in written:
        got = found[row.request_id]
        outputs = None if row.outputs is None else orjson.loads(row.outputs)
        inputs = None if row.inputs is None else orjson.loads(row.inputs)
        assert (got.arm, got.key_name, got.cached, got.outputs, got.inputs) == (
            row.arm,
            row.key_name,
            row.cached,
            outputs,
            inputs,
        )


def test_a_refused_batch_writes_nothing(sql_store: SqlPredictionStore) -> None:
    store = sql_store
    good = _row("good")
    too_long = good._replace(request_id="x" * 129)  # past VARCHAR(128) on PostgreSQL
    missing = good._replace(model=None)  # NOT NULL on both
    # SQLite's through SQLAlchemy; PostgreSQL's COPY runs on psycopg's own cursor
    with pytest.raises((DBAPIError, psycopg.Error)):
        store.write([good, missing, too_long])
    assert store.rows("fraud") == []
