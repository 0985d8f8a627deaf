"""Game of 24: the safe expression parser, ToT's data and splits, the step rules, and the expert."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from agentcritic import envs
from agentcritic.rendering import render
from agentcritic.envs.game24 import Game24Env, load_puzzles, solvable
from agentcritic.envs.game24_expr import MAX_LENGTH, ExpressionError, evaluate


@pytest.fixture()
def env() -> Game24Env:
    return Game24Env()


def _task(numbers: tuple[int, ...]) -> str:
    return str(load_puzzles().index(tuple(sorted(numbers))))


# --------------------------------------------------------------------------------------- parser
@pytest.mark.parametrize(
    ("text", "value", "numbers"),
    [
        ("8 / (3 - 8 / 3)", Fraction(24), (3, 3, 8, 8)),
        ("5 × (5 − 1/5)", Fraction(24), (1, 5, 5, 5)),
        ("(6 - 4) * (4 + 8)", Fraction(24), (4, 4, 6, 8)),
        ("8 ÷ 3", Fraction(8, 3), (3, 8)),
        ("-(3 - 4) * 24", Fraction(24), (3, 4, 24)),
        ("1 - 2 - 3", Fraction(-4), (1, 2, 3)),  # left-associative
        ("2 * 3 + 4 * 5", Fraction(26), (2, 3, 4, 5)),  # precedence
    ],
)
def test_parser_evaluates_exactly(text: str, value: Fraction, numbers: tuple[int, ...]) -> None:
    got = evaluate(text)
    assert got.value == value and isinstance(got.value, Fraction)
    assert got.numbers == numbers


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("__import__('os').system('x')", r"names are not allowed \(found '__import__'\) at position 0"),
        ("a.b", r"names are not allowed \(found 'a'\) at position 0"),
        ("(2).real", r"unexpected character '\.' at position 3"),
        ("2**1000", r"exponent '\*\*' is not allowed at position 1"),
        ("9^9^9", r"exponent '\^' is not allowed at position 1"),
        ("1 + " * 60 + "1", rf"too long \(241 characters, at most {MAX_LENGTH}\)"),
        ("x * 3", r"names are not allowed \(found 'x'\) at position 0"),
        ("10000000 - 1", r"number too large \(8 digits, at most 6\) at position 0"),
        ("2.5 * 4", r"decimal number '2.5' is not allowed at position 0"),
        ("4 / (2 - 2)", r"division by zero at position 2"),
        ("2(3 + 4)", r"expected an operator before '\(' at position 1"),
        ("(1 + 2", r"unclosed '\(' at position 0"),
        ("1 + 2)", r"unmatched '\)' at position 5"),
        ("1 +", r"unexpected end of expression at position 3"),
        ("(" * 40 + "1" + ")" * 40, r"nested too deeply"),
        ("-" * 40 + "1", r"nested too deeply"),
        ("", r"empty expression"),
    ],
)
def test_parser_refuses_with_a_clear_message(text: str, pattern: str) -> None:
    with pytest.raises(ExpressionError, match=pattern):
        evaluate(text)


def test_parser_error_carries_the_position() -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate("1 + 2 ** 3")
    assert info.value.position == 6


# --------------------------------------------------------------------------------------- data and splits
def test_tot_list_and_splits() -> None:
    puzzles = load_puzzles()
    assert len(puzzles) == 1362
    # id = 0-based index = rank - 1: the CSV's rank 1 is "1 1 4 6", rank 900 "1 3 3 11",
    # rank 901 (id "900", ToT's first test puzzle) "4 5 6 10", rank 1000 (id "999") "4 9 10 13".
    assert puzzles[0] == (1, 1, 4, 6)
    assert puzzles[899] == (1, 3, 3, 11)
    assert puzzles[900] == (4, 5, 6, 10)
    assert puzzles[999] == (4, 9, 10, 13)
    e = envs.make("game24")
    test, dev, train = e.task_ids("test"), e.task_ids("dev"), e.task_ids("train")
    assert test == [str(i) for i in range(900, 1000)]
    assert len(dev) == 100 and len(train) == 1162
    assert set(test) | set(dev) | set(train) == {str(i) for i in range(1362)}
    assert not (set(test) & set(dev)) and not (set(dev) & set(train))
    assert dev[:3] == ["26", "57", "68"]  # fixed seed: the dev split must not drift
    obs, info = e.reset(task_id="900")
    assert obs == "Numbers left: 4 5 6 10"
    assert info["instruction"].endswith("Input: 4 5 6 10")
    assert "(+ - * /) to obtain 24" in info["instruction"]


@pytest.mark.parametrize("bad", ["0900", "1362", "-1", "9OO", " 900"])
def test_task_ids_are_exact(env: Game24Env, bad: str) -> None:
    assert not env.is_task_id(bad)
    with pytest.raises(envs.EnvError, match="unknown task id"):
        env.reset(task_id=bad)


def test_tot_list_is_every_solvable_multiset_of_1_to_13() -> None:
    every = {q for q in itertools.combinations_with_replacement(range(1, 14), 4) if solvable(q)}
    assert every == {tuple(sorted(p)) for p in load_puzzles()}
    assert not solvable((1, 1, 1, 1)) and solvable((Fraction(1, 3), 8))


# --------------------------------------------------------------------------------------- steps and answers
def test_fractional_solution_3_3_8_8(env: Game24Env) -> None:
    env.reset(task_id=_task((3, 3, 8, 8)))
    obs, *_ = env.step("8 / 3 = 8/3")
    assert obs == "Numbers left: 8/3 3 8"
    assert "3 - 8/3 = 1/3 (left: 1/3 8)" in env.admissible_actions()
    obs, *_ = env.step("3 - 8/3 = 1/3 (left: 8 1/3)")  # the left list may be in any order
    assert obs == "Numbers left: 1/3 8"
    obs, reward, terminated, _, info = env.step("8 / 1/3 = 24 (left: 24)")
    assert obs == "Numbers left: 24" and reward == 0.0 and not terminated
    assert info["admissible_actions"] == ["Answer: 8 / (3 - 8 / 3) = 24"]
    assert env.expert_action() == "Answer: 8 / (3 - 8 / 3) = 24"
    obs, reward, terminated, _, info = env.step("Answer: 8 / (3 - 8 / 3) = 24")
    assert (reward, terminated, info["success"], info["score"]) == (1.0, True, True, 1.0)
    assert obs.startswith("Correct")


def test_fractional_answer_1_5_5_5_in_one_shot(env: Game24Env) -> None:
    env.reset(task_id=_task((1, 5, 5, 5)))
    _, reward, terminated, _, info = env.step("Answer: 5 × (5 − 1/5) = 24")
    assert (reward, terminated, info["success"]) == (1.0, True, True)


def test_answer_line_is_built_from_the_history_with_parentheses(env: Game24Env) -> None:
    env.reset(task_id=_task((1, 2, 3, 4)))
    for step in ["1 + 2 = 3", "3 + 3 = 6", "6 * 4 = 24"]:
        env.step(step)
    (line,) = env.admissible_actions()
    assert line == "Answer: (3 + 1 + 2) * 4 = 24"
    env.reset(task_id="900")  # 4 5 6 10
    for step in ["10 - 4 = 6", "6 * 5 = 30", "30 - 6 = 24"]:
        env.step(step)
    assert env.admissible_actions() == ["Answer: 6 * 5 - (10 - 4) = 24"]


def test_lenient_step_formats(env: Game24Env) -> None:
    env.reset(task_id="900")  # 4 5 6 10
    for step in ["10−4=6.", "6 x 6 = 36", "36 ÷ 5 = 36/5 (left: 36/5)"]:
        _, _, _, _, info = env.step(step)
        assert info["invalid"] is False, step
    assert env.last_observation == "Numbers left: 36/5"


def test_wrong_arithmetic_is_invalid_and_says_so(env: Game24Env) -> None:
    env.reset(task_id="900")
    obs, reward, terminated, _, info = env.step("4 + 5 = 10 (left: 6 10 10)")
    assert info["invalid"] and reward == 0.0 and not terminated
    assert "wrong arithmetic: 4 + 5 = 9, not 10" in obs
    assert obs.endswith("Numbers left: 4 5 6 10")  # state unchanged


def test_left_list_mismatch_is_invalid(env: Game24Env) -> None:
    env.reset(task_id="900")
    obs, _, _, _, info = env.step("4 + 5 = 9 (left: 6 9)")
    assert info["invalid"]
    assert "the numbers left are 6 9 10, not 6 9" in obs
    assert info["numbers_left"] == ["4", "5", "6", "10"]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("4 + 7 = 11", "7 is not among the numbers left"),
        ("4 + 4 = 8", "uses 4 twice but only one 4 is left"),
        ("4 / 0 = 0", "0 is not among the numbers left"),
        ("4 / 5/0 = 1", "zero denominator"),
        ("what is 4 + 5?", "could not read"),
        ("4 + 5 = 9 (left: 6 9 1e999999999)", "could not read the list"),
    ],
)
def test_invalid_steps_explain(env: Game24Env, step: str, message: str) -> None:
    env.reset(task_id="900")
    obs, _, terminated, _, info = env.step(step)
    assert info["invalid"] and not terminated
    assert message in obs


def test_division_by_a_zero_left_is_invalid_and_not_admissible(env: Game24Env) -> None:
    env.reset(task_id=_task((4, 4, 6, 8)))
    env.step("4 - 4 = 0")
    assert not any(a.startswith(("6 / 0", "8 / 0")) for a in env.admissible_actions())
    assert "0 / 6 = 0 (left: 0 8)" in env.admissible_actions()
    obs, _, _, _, info = env.step("6 / 0 = 0")
    assert info["invalid"] and "division by zero" in obs


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("Answer: 4 * 6 = 24", "it uses the numbers 4 6 but the input is 4 5 6 10"),
        ("Answer: 4 + 5 + 6 + 10 = 24", "4 + 5 + 6 + 10 = 25, not 24"),
        ("Answer: (10 - 4) * 5 - 6 = 25", "the result must be 24, not 25"),
    ],
)
def test_wrong_answer_ends_the_episode_with_score_0(env: Game24Env, answer: str, message: str) -> None:
    env.reset(task_id="900")
    obs, reward, terminated, _, info = env.step(answer)
    assert terminated and reward == 0.0 and info["success"] is False and info["score"] == 0.0
    assert obs.startswith("Wrong answer") and message in obs


def test_unparseable_answer_is_invalid_not_final(env: Game24Env) -> None:
    env.reset(task_id="900")
    obs, _, terminated, _, info = env.step("Answer: __import__('os').system('x') = 24")
    assert info["invalid"] and not terminated
    assert "names are not allowed (found '__import__') at position 0" in obs
    _, reward, terminated, _, info = env.step("Answer: 5 * 6 - (10 - 4) = 24")
    assert terminated and reward == 1.0  # the agent can still answer


def test_one_number_not_24_left(env: Game24Env) -> None:
    env.reset(task_id="900")
    for step in ["4 + 5 = 9", "9 + 6 = 15", "15 + 10 = 25"]:
        env.step(step)
    assert env.admissible_actions() == ["Answer: 4 + 5 + 6 + 10 = 24"]
    assert env.expert_action() is None
    obs, _, terminated, _, info = env.step("25 - 1 = 24")
    assert info["invalid"] and not terminated and "only one number is left (25)" in obs
    _, _, terminated, _, info = env.step(env.admissible_actions()[0])
    assert terminated and info["success"] is False and info["score"] == 0.0


def test_admissible_actions_are_complete_sorted_and_unique(env: Game24Env) -> None:
    env.reset(task_id=_task((4, 4, 6, 8)))
    actions = env.admissible_actions()
    assert actions == sorted(set(actions))
    # distinct pairs by value: (4,4) gives 4 distinct actions (4 - 4 and 4 / 4 once each);
    # (4,6), (4,8), (6,8) give 6 each, and the second 4 repeats the first's actions exactly
    assert len(actions) == 4 + 3 * 6
    assert "4 * 6 = 24 (left: 4 8 24)" in actions and "8 / 6 = 4/3 (left: 4/3 4 4)" in actions


def test_expert_solves_every_puzzle_through_admissible_actions(env: Game24Env) -> None:
    for task in sorted(env.all_task_ids(), key=int):
        _, info = env.reset(task_id=task)
        while True:
            action = env.expert_action()
            assert action is not None and action in info["admissible_actions"], (task, env.actions)
            _, _, terminated, truncated, info = env.step(action)
            assert not info["invalid"]
            if terminated or truncated:
                break
        assert info["success"] and env.score == 1.0 and len(env.actions) == 4, (task, env.actions)


def test_expert_gives_up_only_when_no_path_remains(env: Game24Env) -> None:
    env.reset(task_id="900")  # 4 5 6 10
    env.step("4 + 5 = 9")  # 6 9 10: no way to 24
    assert not solvable((6, 9, 10))
    assert env.expert_action() is None
    env.reset(task_id="900")
    env.step("10 - 4 = 6")
    assert env.expert_action() is not None


def test_reward_model_text_hides_the_verdict_but_keeps_the_steps(env: Game24Env) -> None:
    from agentcritic.agents import ExpertAgent, rollout
    from agentcritic.types import Step, Trajectory

    traj = rollout(env, ExpertAgent(), _task((3, 3, 8, 8)))
    assert traj.success and traj.steps[-1].observation.startswith("Correct:")
    text = render(traj.instruction, traj)
    assert "Correct" not in text and text.endswith("Observation: Answer submitted.")
    assert f"Action: {traj.steps[-1].action}" in text  # the answer line itself stays
    assert text.startswith(f"Instruction: {traj.instruction}\nObservation: ")
    wrong = Trajectory("game24", "1", "x", [Step("Answer: 8 * 3 = 24", "Wrong answer: it uses the numbers 3 8")])
    assert "Wrong" not in render("x", wrong)
