"""add_judge and judge_pairs run as commands against a real `transformers serve`: the judge
and its account, a job run in the foreground with its progress bar, and a failing endpoint's
reason (or bad input) as the command's error."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from annotate.models import Comparison, Judge, JudgeVerdict
from tests.factories import make_pair

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_add_judge_then_judge_pairs(project, judge_server, tmp_path):
    rubric = tmp_path / "rubric.txt"
    rubric.write_text("Prompt: {prompt}\nSecond: {response_2}\nFirst: {response_1}")
    out, _ = run(
        *("add_judge", "--project", "demo", "tiny", "--base-url", judge_server.base_url),
        *("--model", judge_server.model, "--rubric", str(rubric), "--max-tokens", "6"),
        *("--temperature", "0", "--concurrency", "3"),
    )
    assert "Added judge tiny to demo" in out and "its own rubric" in out
    assert "its labeler account is judge:demo:tiny" in out
    judge = Judge.objects.get(name="tiny")
    assert (judge.max_tokens, judge.temperature, judge.concurrency) == (6, 0.0, 3)
    for i in range(3):
        make_pair(project, f"w{i}", a=f"w{i + 4} good", b=f"w{i + 8} bad")

    out, err = run("judge_pairs", "--project", "demo", "--judge", "tiny", "--limit", "2")
    assert "succeeded: 2 pairs read in both orders, 2 new comparisons, 0 unparsable" in out
    assert "[##############################] 2/2 pairs, 2 comparisons, 0 unparsable" in err
    assert JudgeVerdict.objects.count() == 4
    assert set(Comparison.objects.values_list("choice", "p_chosen")) == {("a", 1.0)}

    out, _ = run("judge_pairs", "--project", "demo", "--judge", "tiny", "--open-only")
    assert "succeeded: 1 pairs read in both orders, 1 new comparisons" in out


def test_judge_pairs_fails_with_the_endpoints_reason(project, judge_server):
    run(
        *("add_judge", "--project", "demo", "wrong", "--base-url", judge_server.base_url),
        *("--model", "no-such-model"),
    )
    make_pair(project, "w1", a="w2", b="w3")
    with pytest.raises(CommandError, match=r"failed: judge 'wrong': .* answered 400: .*"):
        run("judge_pairs", "--project", "demo", "--judge", "wrong")


def test_the_commands_name_bad_input(project, tmp_path):
    add = ("add_judge", "--project", "demo", "a", "--base-url", "http://h/v1", "--model", "m")
    run(*add)
    with pytest.raises(CommandError, match="already has a judge named 'a'; nothing was added"):
        run(*add)
    rubric = tmp_path / "rubric.txt"
    rubric.write_text("Which is better?")
    with pytest.raises(CommandError, match=r"it lacks \{prompt\}, \{response_1\}, \{resp"):
        run(*add[:3], "b", *add[4:], "--rubric", str(rubric))
    with pytest.raises(CommandError, match="cannot read the rubric"):
        run(*add[:3], "b", *add[4:], "--rubric", str(tmp_path / "missing.txt"))
    with pytest.raises(CommandError, match="No project with slug 'nope'"):
        run("judge_pairs", "--project", "nope", "--judge", "a")
    with pytest.raises(CommandError, match=r"no judge named b in demo \(it has: a\)"):
        run("judge_pairs", "--project", "demo", "--judge", "b")
    with pytest.raises(CommandError, match="limit must be at least 1, not 0"):
        run("judge_pairs", "--project", "demo", "--judge", "a", "--limit", "0")
    assert Judge.objects.count() == 1
