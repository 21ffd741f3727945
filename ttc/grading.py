"""Answer extraction, math-answer normalization and exact grading.

Shared by the CPU world and real query files (GSM8K-style numeric answers):
numbers with thousands separators, currency, trailing units, LaTeX fractions and
\\boxed{} all normalize to one canonical string, so equal values compare equal.
"""

from __future__ import annotations

import re
from fractions import Fraction

STEP_SEPARATOR = "\n\n"

_NUMBER = re.compile(r"[-+]?(?:\d+(?:,\d{3})*|\d*)(?:\.\d+)?(?:/\d+)?")


def split_steps(solution: str) -> list[str]:
    """Steps are separated by a blank line; empty fragments are dropped."""
    return [s.strip() for s in re.split(r"\n\s*\n", solution) if s.strip()]


def extract_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...}, braces balanced; None when there is none."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth, j = 0, i
    while j < len(text):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j].strip()
        j += 1
    return None  # unbalanced: the solution was cut off


def _strip_latex(s: str) -> str:
    s = re.sub(r"\\(?:text|mathrm|mbox)\{([^{}]*)\}", r"\1", s)
    s = re.sub(r"\\d?frac\{([^{}]*)\}\{([^{}]*)\}", r"(\1)/(\2)", s)
    s = s.replace("\\!", "").replace("\\,", "").replace("\\ ", "")
    s = s.replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "")
    s = s.replace("\\left", "").replace("\\right", "")
    return s


def normalize_answer(raw: str | None) -> str | None:
    """Canonical form of a final answer; numbers become reduced fractions or integers.

    '1,234' -> '1234', '$18.00' -> '18', '\\frac{1}{2}' -> '1/2', '0.5' -> '1/2',
    '42 apples' -> '42', '\\boxed{7}' -> '7'. Non-numeric answers are lower-cased
    with white space removed. None and empty strings give None.
    """
    if raw is None:
        return None
    s = raw.strip()
    boxed = extract_boxed(s)
    if boxed is not None:
        s = boxed
    s = _strip_latex(s).strip().rstrip(".").strip()
    if not s:
        return None
    compact = s.replace(" ", "")
    m = re.fullmatch(r"\(?([-+]?[\d.,]+)\)?/\(?([\d.,]+)\)?", compact)
    if m:
        value = _to_fraction(m.group(1)), _to_fraction(m.group(2))
        if value[0] is not None and value[1]:
            return _fraction_str(value[0] / value[1])
    # A leading number followed by words is a number with units ("42 apples").
    m = re.match(r"^[-+]?\d[\d,]*(?:\.\d+)?", compact)
    if m and (len(m.group(0)) == len(compact) or re.fullmatch(r"[a-zA-Z]+\.?", s[len(m.group(0)):].strip() or "x")):
        value = _to_fraction(m.group(0))
        if value is not None:
            return _fraction_str(value)
    return compact.lower()


def _to_fraction(s: str) -> Fraction | None:
    s = s.replace(",", "")
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def _fraction_str(f: Fraction) -> str:
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def answers_match(predicted: str | None, reference: str | None) -> bool:
    p, r = normalize_answer(predicted), normalize_answer(reference)
    return p is not None and p == r
