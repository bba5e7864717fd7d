import pytest

from servewell.core.ref import ModelRef
from servewell.errors import InvalidReference


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("iris", ModelRef("iris")),
        ("iris@3", ModelRef("iris", version=3)),
        ("iris@production", ModelRef("iris", alias="production")),
        ("my-model.v2@staging", ModelRef("my-model.v2", alias="staging")),
    ],
)
def test_parse(text: str, expected: ModelRef) -> None:
    assert ModelRef.parse(text) == expected
    assert str(ModelRef.parse(text)) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "model name"),
        ("iris@", "nothing after '@'"),
        ("iris@0", "versions start at 1"),
        ("bad name", "model name"),
        ("iris@-x", "alias"),
        ("iris\n@1", "model name"),  # '$' would match before a trailing newline
        ("iris@\u00b2", "alias"),  # a superscript two is a digit to str.isdigit, not to int()
        ("iris@99999999999999999999999", "at most 2147483647"),
    ],
)
def test_parse_rejects(text: str, reason: str) -> None:
    with pytest.raises(InvalidReference, match=reason):
        ModelRef.parse(text)
