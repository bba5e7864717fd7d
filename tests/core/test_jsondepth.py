import json

import pytest

from servewell.core.jsondepth import check_json_depth, may_exceed_depth
from servewell.errors import InvalidInput


def nested_lists(depth: int) -> object:
    """``depth`` lists inside each other, built in a loop (no recursion)."""
    document: object = 1
    for _ in range(depth):
        document = [document]
    return document


@pytest.mark.parametrize(
    ("document", "depth"),
    [
        (1, 0),
        ("text", 0),
        (None, 0),
        ([], 1),
        ({}, 1),
        ([[1]], 2),
        ({"inputs": [{"data": [[1, 2], [3, 4]]}]}, 5),
        ([1, {"a": [{}]}, []], 4),
        ([[], [[[]]], 0], 4),
    ],
)
def test_depth_at_the_limit_passes_and_one_over_fails(document: object, depth: int) -> None:
    check_json_depth(document, depth)
    check_json_depth(document, depth + 1)
    if depth > 0:
        with pytest.raises(InvalidInput, match=f"nests deeper than {depth - 1} levels"):
            check_json_depth(document, depth - 1)


def test_the_message_names_the_limit_and_the_setting() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_json_depth(nested_lists(65), 64)
    assert str(caught.value) == (
        "the request body nests deeper than 64 levels (validation.max_json_depth)"
    )
    assert caught.value.detail == {"max_json_depth": 64}


def test_mixed_objects_and_arrays_count_alike() -> None:
    document: object = {"leaf": True}
    for level in range(30):
        document = [document] if level % 2 else {"next": document, "other": [1, 2]}
    check_json_depth(document, 31)
    with pytest.raises(InvalidInput, match="deeper than 30 levels"):
        check_json_depth(document, 30)


def test_a_deep_sibling_after_shallow_ones_is_found() -> None:
    document = [[1], {"a": 2}, "x", nested_lists(10)]
    check_json_depth(document, 11)
    with pytest.raises(InvalidInput):
        check_json_depth(document, 10)


def test_a_very_deep_document_does_not_recurse() -> None:
    deep = nested_lists(100_000)  # far past the interpreter's recursion limit
    with pytest.raises(InvalidInput, match="deeper than 10 levels"):
        check_json_depth(deep, 10)
    check_json_depth(deep, 100_000)  # walked to the bottom, still no recursion


def test_the_prefilter_skips_bodies_that_cannot_nest_too_deep() -> None:
    body = json.dumps({"inputs": [{"name": "x", "data": [[1, 2], [3, 4]]}]}).encode()
    assert body.count(b"[") + body.count(b"{") == 6
    assert not may_exceed_depth(body, 6)
    assert may_exceed_depth(body, 5)
    assert not may_exceed_depth(b"42", 1)
    assert may_exceed_depth(b'"[[["', 2)  # brackets in strings count: a false maybe, never a miss


def test_the_prefilter_never_misses_a_deep_body() -> None:
    body = json.dumps(nested_lists(65)).encode()
    assert may_exceed_depth(body, 64)
