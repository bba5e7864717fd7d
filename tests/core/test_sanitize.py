from servewell.core.sanitize import normalize_text


def test_nfc_and_control_characters() -> None:
    decomposed = "e\u0301cole"  # e + combining acute accent
    assert normalize_text(decomposed) == "\u00e9cole"
    assert normalize_text("a\x00b\x07c\u200bd\u202ee") == "abcde"
    assert normalize_text("line one\n\tline two") == "line one\n\tline two"
    assert normalize_text("plain") == "plain"
