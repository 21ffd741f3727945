import random

import pytest

from ttc.arithmetic import (MAX_LEVEL, generate_problems, make_problem, parse_question,
                            reference_solution, reference_steps, step_labels)
from ttc.grading import answers_match, extract_boxed, split_steps


def test_seeded_and_graded():
    a = generate_problems(5, seed=3)
    b = generate_problems(5, seed=3)
    assert a == b
    assert a != generate_problems(5, seed=4)
    assert {p.difficulty for p in a} == set(range(1, MAX_LEVEL + 1))
    for p in a:
        _, ops = parse_question(p.question)
        assert len(ops) == p.difficulty


def test_reference_solution_is_correct_and_in_range():
    for p in generate_problems(30, seed=1):
        sol = reference_solution(p.question)
        steps = split_steps(sol)
        assert len(steps) == p.difficulty
        assert answers_match(extract_boxed(sol), p.answer)
        for s in steps:  # every intermediate in 0..99
            lhs, rhs = s.split(" = ")
            value = int(rhs.replace("\\boxed{", "").rstrip("}"))
            assert 0 <= value <= 99


def test_step_labels_prefix_rule():
    q = "7 + 3 * 4 - 9"
    ref = reference_steps(q)
    assert ref == ["7 + 3 = 10", "10 * 4 = 40", "40 - 9 = \\boxed{31}"]
    assert step_labels(q, ref) == [1, 1, 1]
    assert step_labels(q, ["7 + 3 = 11", "11 * 4 = 44", "44 - 9 = \\boxed{35}"]) == [0, 0, 0]
    assert step_labels(q, ["7 + 3 = 10", "10 * 4 = 41", "40 - 9 = \\boxed{31}"]) == [1, 0, 0]
    assert step_labels(q, ref + ["extra"]) == [1, 1, 1, 0]


def test_bad_inputs():
    with pytest.raises(ValueError, match="difficulty level"):
        make_problem(random.Random(0), 0, "x")
    with pytest.raises(ValueError, match="not an arithmetic chain"):
        parse_question("seven plus three")


def test_levels_beyond_the_world_only_when_asked():
    with pytest.raises(ValueError, match="difficulty level must be in 1..8"):
        make_problem(random.Random(0), MAX_LEVEL + 1, "x")
    p = make_problem(random.Random(0), 11, "x", max_level=12)
    assert p.difficulty == 11 and len(parse_question(p.question)[1]) == 11
    assert {q.difficulty for q in generate_problems(2, seed=1, levels=[9, 10], max_level=10)} == {9, 10}
