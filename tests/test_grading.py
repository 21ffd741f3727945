import pytest

from ttc.grading import answers_match, extract_boxed, normalize_answer, split_steps


@pytest.mark.parametrize("raw, expected", [
    ("1,234", "1234"),
    ("$18.00", "18"),
    ("\\$18", "18"),
    ("18.", "18"),
    ("\\frac{1}{2}", "1/2"),
    ("\\dfrac{3}{6}", "1/2"),
    ("0.5", "1/2"),
    ("-7", "-7"),
    ("42 apples", "42"),
    ("42 dollars.", "42"),
    ("\\boxed{7}", "7"),
    ("The answer is \\boxed{\\frac{10}{4}}", "5/2"),
    ("50%", "50"),
    ("\\text{5 cm}", "5"),
    ("x + 1", "x+1"),
])
def test_normalize(raw, expected):
    assert normalize_answer(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "   ", "\\boxed{}"])
def test_normalize_empty(raw):
    assert normalize_answer(raw) is None


def test_match_and_mismatch():
    assert answers_match("1,000", "1000")
    assert answers_match("\\boxed{2/4}", "0.5")
    assert not answers_match("12", "21")
    assert not answers_match(None, "3")
    assert not answers_match("", "")


def test_extract_boxed_nested_and_last():
    assert extract_boxed("a \\boxed{1} b \\boxed{\\frac{2}{3}}") == "\\frac{2}{3}"
    assert extract_boxed("no box here") is None
    assert extract_boxed("cut off \\boxed{12") is None


def test_split_steps():
    assert split_steps("a = 1\n\nb = 2\n \n\nc") == ["a = 1", "b = 2", "c"]
    assert split_steps("\n\n") == []
