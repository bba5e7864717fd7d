import pytest

from servewell.core.rate import Rate
from servewell.errors import InvalidInput


def test_rate_parsing() -> None:
    assert Rate.parse("100/minute") == Rate(100, 60.0)
    assert Rate.parse("5 / seconds") == Rate(5, 1.0)
    assert Rate.parse("10/5minutes") == Rate(10, 300.0)
    assert str(Rate.parse("1000/hour")) == "1000/hour"
    for bad in ("fast", "10/fortnight", "-1/second", "1.5/second", "10/-5minutes"):
        with pytest.raises(InvalidInput, match="is not like 100/minute"):
            Rate.parse(bad)


def test_the_bounds_themselves_are_accepted() -> None:
    assert Rate.parse("1/second") == Rate(1, 1.0)
    assert Rate.parse("1000000000/second") == Rate(1_000_000_000, 1.0)
    assert Rate.parse("1/1000000days") == Rate(1, 1_000_000 * 86400.0)
    assert Rate.parse("007/010minutes") == Rate(7, 600.0)


@pytest.mark.parametrize(
    "text",
    ["0/minute", "000/minute", "1000000001/second", "100000000000000000000000/second"],
)
def test_a_count_out_of_bounds_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Rate.parse(text)
    assert str(caught.value) == (
        f"rate '{text}': the count must be from 1 to 1000000000 per period"
    )


@pytest.mark.parametrize(
    ("text", "unit"),
    [("10/0minutes", "minute"), ("10/00second", "second"), ("1/1000001days", "day")],
)
def test_a_period_out_of_bounds_is_refused(text: str, unit: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Rate.parse(text)
    assert str(caught.value) == (f"rate '{text}': the period must be from 1 to 1000000 {unit}s")


def test_thousands_of_digits_are_one_invalid_input() -> None:
    # int() of over 4300 digits raises a bare ValueError; the text is refused before that
    with pytest.raises(InvalidInput, match="the count must be") as caught:
        Rate.parse("9" * 5000 + "/second")
    assert len(str(caught.value)) < 200
    with pytest.raises(InvalidInput, match="the period must be"):
        Rate.parse("1/" + "9" * 5000 + "days")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("100/minute", "100/minute"),
        ("1/day", "1/day"),
        ("10/5minutes", "10/5minutes"),
        ("7/90minutes", "7/90minutes"),
        ("3/120minutes", "3/2hours"),
        ("1/12days", "1/12days"),
        ("1/1000000days", "1/1000000days"),
        ("5/90seconds", "5/90seconds"),
    ],
)
def test_a_rate_reads_back_what_it_shows(text: str, shown: str) -> None:
    rate = Rate.parse(text)
    assert str(rate) == shown
    assert Rate.parse(str(rate)) == rate
