"""Reading a judge's reply: the verdict on its last line (strictly: a reply that does not end
with one is unparsable, never guessed), the probability of response 1 from the verdict token's
logprobs when the endpoint gave them, the verdict in the pair's terms for the order it was
read in, and the one judgment that the two readings of a pair (A/B and B/A) make together."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# The last line, once markdown emphasis is dropped: "Verdict: 1", "**Verdict:** both bad.".
_VERDICT_LINE = re.compile(
    r"^\s*(?:#+\s*)?verdict\s*:\s*(1|2|tie|both[\s_-]*bad)\s*\.?\s*$", re.IGNORECASE
)
_EMPHASIS = re.compile(r"[*`]")
# A verdict's first token, as tokenizers split "Verdict: both bad" (" both", "both", "1").
_FIRST_TOKEN = {"1": "1", "2": "2", "tie": "tie", "both": "both bad"}
EXCERPT = 200  # of a reply, in a parse error

# Pair terms (Comparison.choice) of each verdict, by the order the pair was read in.
PAIR_TERMS = {
    "ab": {"1": "a", "2": "b", "tie": "tie", "both bad": "both_bad"},
    "ba": {"1": "b", "2": "a", "tie": "tie", "both bad": "both_bad"},
}
# Among outcomes equally likely, the first of these is the judgment (a side over a tie).
OUTCOMES = ("a", "b", "tie", "both_bad")


class VerdictUnparsable(ValueError):
    """A reply that does not end with a verdict line the project allows; says why."""


@dataclass(frozen=True)
class Verdict:
    shown: str  # in the reply's terms: "1", "2", "tie", "both bad"
    rationale: str  # the reply before the verdict line


def verdict_parse(text: str, allowed: Sequence[str]) -> Verdict:
    """The verdict of a reply whose last non-blank line is `Verdict: <one of allowed>`."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise VerdictUnparsable("the reply is empty")
    match = _VERDICT_LINE.match(_EMPHASIS.sub("", lines[-1]))
    if match is None:
        raise VerdictUnparsable(f"its last line is not a verdict line: {_excerpt(lines[-1])!r}")
    shown = match.group(1).lower()
    shown = "both bad" if shown.startswith("both") else shown
    if shown not in allowed:
        raise VerdictUnparsable(f"'Verdict: {shown}' is not a choice of this project")
    return Verdict(shown=shown, rationale="\n".join(lines[:-1]).strip())


def p_first(logprobs: list[dict[str, Any]] | None, shown: str) -> float | None:
    """P(response 1 better) as RLAIF takes it: at the verdict's token, the probabilities of
    the "1" and "2" tokens among its top alternatives, normalised over the two (spellings
    such as "1" and " 1" add up). None without logprobs, or when the verdict's token cannot
    be found in them (a tokenizer that merges it with its neighbours)."""
    if not logprobs:
        return None
    for entry in reversed(logprobs):
        if not isinstance(entry, dict):
            return None
        first = _FIRST_TOKEN.get(str(entry.get("token", "")).strip().lower())
        if first is None:
            continue
        if first != shown:
            return None  # the last verdict-like token is not the verdict read
        mass = {"1": 0.0, "2": 0.0}
        alternatives = entry.get("top_logprobs") or []
        seen = {str(a.get("token")) for a in alternatives if isinstance(a, dict)}
        if str(entry.get("token")) not in seen:
            alternatives = [*alternatives, entry]
        for alt in alternatives:
            if not isinstance(alt, dict):
                continue
            token = _FIRST_TOKEN.get(str(alt.get("token", "")).strip().lower())
            logprob = alt.get("logprob")
            if token in mass and isinstance(logprob, int | float) and math.isfinite(logprob):
                mass[token] += math.exp(logprob)
        total = mass["1"] + mass["2"]
        return mass["1"] / total if total > 0 else None
    return None


def in_pair_terms(shown: str, order: str) -> str:
    """A verdict read in `order` as a Comparison choice: in B/A, "1" is the pair's B."""
    return PAIR_TERMS[order][shown]


def p_a_of(p_first_value: float | None, order: str) -> float | None:
    """P(the pair's A better) from P(response 1 better) in `order`."""
    if p_first_value is None:
        return None
    return p_first_value if order == "ab" else 1.0 - p_first_value


@dataclass(frozen=True)
class Judgment:
    choice: str  # a, b, tie, both_bad
    p_chosen: float


def readings_combine(readings: Sequence[tuple[str, float | None]]) -> Judgment | None:
    """One judgment from a pair's parsable readings, each (choice in pair terms, P(A) or
    None). Each reading is a distribution over the outcomes: {a: P(A), b: 1 - P(A)} when
    its logprobs gave P(A) and its verdict is a side, else all of it on its verdict. Their
    mean decides: the choice is the likeliest outcome and `p_chosen` its probability, so a
    judge that says "1" in both orders (position bias, no preference) cancels out: A and B
    at 0.5 each, which is a tie at 0.5. None when no reading is parsable."""
    if not readings:
        return None
    mean = dict.fromkeys(OUTCOMES, 0.0)
    for choice, p_a in readings:
        if p_a is not None and choice in ("a", "b"):
            mean["a"] += p_a / len(readings)
            mean["b"] += (1.0 - p_a) / len(readings)
        else:
            mean[choice] += 1.0 / len(readings)
    top = max(mean.values())
    leaders = [o for o in OUTCOMES if math.isclose(mean[o], top, abs_tol=1e-9)]
    choice = "tie" if "a" in leaders and "b" in leaders else leaders[0]
    return Judgment(choice=choice, p_chosen=round(min(max(top, 0.0), 1.0), 6))


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"
