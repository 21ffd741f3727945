"""The CPU world's task family: seeded multi-step arithmetic with graded difficulty.

A problem is a chain of one-digit operations evaluated left to right, e.g.
``7 + 3 * 4 - 9``; difficulty is the number of operations (steps). Every
intermediate value stays in 0..99 so the tiny policy never needs three digits.
The reference solution writes one step per operation, steps separated by a blank
line, and boxes the final value in the last step::

    7 + 3 = 10

    10 * 4 = 40

    40 - 9 = \\boxed{31}
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ttc.grading import STEP_SEPARATOR, extract_boxed
from ttc.queries import Query

MIN_LEVEL = 1
MAX_LEVEL = 8
MAX_VALUE = 99
PROMPT_HEADER = "Evaluate left to right: "


@dataclass(frozen=True)
class Problem:
    query_id: str
    question: str
    answer: str
    difficulty: int
    source: str = "arithmetic"
    start: int = 0
    ops: tuple[tuple[str, int], ...] = field(default=())

    def to_query(self) -> Query:
        return Query(query_id=self.query_id, question=self.question, answer=self.answer,
                     source=self.source, difficulty=self.difficulty)


def apply_op(value: int, op: str, operand: int) -> int:
    if op == "+":
        return value + operand
    if op == "-":
        return value - operand
    if op == "*":
        return value * operand
    raise ValueError(f"unknown operator {op!r}")


# Distribution shifts, to evaluate a router away from its training distribution: operator weights
# before rejection sampling. None is the world's own uniform draw (the models were trained on it);
# a mix only re-weights operators, so every step stays one the world knows. After rejection,
# "mul_heavy" has 38% '*' steps against 24% by default (measured on 1,600 problems).
OP_MIXES: dict[str, dict[str, float]] = {
    "mul_heavy": {"+": 1.0, "-": 1.0, "*": 6.0},
}


def _pick_op(rng: random.Random, value: int, op_weights: dict[str, float] | None = None) -> tuple[str, int]:
    # Rejection sampling keeps every intermediate in 0..MAX_VALUE; '*' by 0 or 1
    # is excluded because it makes a step trivially guessable.
    ops, weights = ("+-*", None) if op_weights is None else (list(op_weights), list(op_weights.values()))
    while True:
        # The default keeps rng.choice so the default distribution draws exactly as before.
        op = rng.choice(ops) if weights is None else rng.choices(ops, weights)[0]
        operand = rng.randint(2, 9) if op == "*" else rng.randint(1, 9)
        result = apply_op(value, op, operand)
        if 0 <= result <= MAX_VALUE:
            return op, operand


def check_op_weights(op_weights: dict[str, float] | None) -> dict[str, float] | None:
    if op_weights is None:
        return None
    bad = [op for op in op_weights if op not in ("+", "-", "*")]
    if bad or not op_weights:
        raise ValueError(f"operator weights must be over '+', '-', '*', got {sorted(op_weights)}")
    if any(not w >= 0 for w in op_weights.values()) or not (op_weights.get("+", 0) > 0 and op_weights.get("-", 0) > 0):
        # Every value in 0..99 admits a '+' or a '-' step, so rejection sampling always ends.
        raise ValueError(f"operator weights must be >= 0 with '+' and '-' > 0, got {op_weights}")
    return dict(op_weights)


def op_mix(name: str | None) -> dict[str, float] | None:
    if name is None:
        return None
    if name not in OP_MIXES:
        raise ValueError(f"unknown operator mix {name!r}; known: {sorted(OP_MIXES)}")
    return OP_MIXES[name]


def make_problem(rng: random.Random, level: int, query_id: str,
                 op_weights: dict[str, float] | None = None, source: str = "arithmetic",
                 max_level: int = MAX_LEVEL) -> Problem:
    """`max_level` above the world's MAX_LEVEL only to probe the shipped models beyond the
    range they were trained on (benchmarks/world_quality.py --levels)."""
    if not MIN_LEVEL <= level <= max_level:
        raise ValueError(f"difficulty level must be in {MIN_LEVEL}..{max_level}, got {level}")
    op_weights = check_op_weights(op_weights)
    start = rng.randint(1, 9)
    value = start
    ops = []
    for _ in range(level):
        op, operand = _pick_op(rng, value, op_weights)
        value = apply_op(value, op, operand)
        ops.append((op, operand))
    question = str(start) + "".join(f" {op} {operand}" for op, operand in ops)
    return Problem(query_id=query_id, question=question, answer=str(value), difficulty=level,
                   source=source, start=start, ops=tuple(ops))


def generate_problems(n_per_level: int, seed: int, levels=range(MIN_LEVEL, MAX_LEVEL + 1),
                      prefix: str = "arith", mix: str | None = None, max_level: int = MAX_LEVEL) -> list[Problem]:
    """n_per_level problems for each level; the same seed always gives the same set.

    `mix` names an operator mix of OP_MIXES (a distribution shift); None is the world's own.
    Shifted problems carry source `arithmetic/<mix>`."""
    rng = random.Random(seed)
    weights = op_mix(mix)
    source = "arithmetic" if mix is None else f"arithmetic/{mix}"
    problems = []
    for level in levels:
        for i in range(n_per_level):
            problems.append(make_problem(rng, level, f"{prefix}-s{seed}-l{level}-{i}", weights, source, max_level))
    return problems


def parse_question(question: str) -> tuple[int, list[tuple[str, int]]]:
    """Inverse of the question text; raises ValueError on anything else."""
    tokens = question.split()
    if not tokens or len(tokens) % 2 == 0:
        raise ValueError(f"not an arithmetic chain: {question!r}")
    try:
        start = int(tokens[0])
        ops = [(tokens[i], int(tokens[i + 1])) for i in range(1, len(tokens), 2)]
    except ValueError as exc:
        raise ValueError(f"not an arithmetic chain: {question!r}") from exc
    for op, _ in ops:
        if op not in "+-*" or len(op) != 1:
            raise ValueError(f"unknown operator {op!r} in {question!r}")
    return start, ops


def reference_steps(question: str) -> list[str]:
    start, ops = parse_question(question)
    steps, value = [], start
    for i, (op, operand) in enumerate(ops):
        new = apply_op(value, op, operand)
        rhs = f"\\boxed{{{new}}}" if i == len(ops) - 1 else str(new)
        steps.append(f"{value} {op} {operand} = {rhs}")
        value = new
    return steps


def reference_solution(question: str) -> str:
    return STEP_SEPARATOR.join(reference_steps(question))


def render_prompt(question: str) -> str:
    """Prompt the tiny policy and PRM were trained on; the solution follows directly."""
    return f"{PROMPT_HEADER}{question}\n\n"


def step_labels(question: str, steps: list[str]) -> list[int]:
    """1 for a step that is right and follows only right steps, else 0.

    The world's solutions are deterministic, so "right so far" means the prefix of
    steps equals the reference prefix (whitespace-insensitive). A step after the
    boxed final step is wrong: the solution should have ended.
    """
    ref = [" ".join(s.split()) for s in reference_steps(question)]
    labels, ok = [], True
    for i, step in enumerate(steps):
        ok = ok and i < len(ref) and " ".join(step.split()) == ref[i]
        labels.append(int(ok))
    return labels


def final_answer(text: str) -> str | None:
    return extract_boxed(text)
