"""Argilla ranking records: `{fields: {prompt, response-1, ...}, responses: [...]}`, a
RankingQuestion's answers `[{rank, value}]` where each value names the field holding a response.

Both record shapes are read: Argilla 1.x (FeedbackRecord: `responses` a list of `{user_id,
status, values: {question: {value}}}`) and 2.x (`records.to_list()`: `responses` an object of
`{question: [{value, user_id, status}]}`). The prompt is the first of PROMPT_FIELDS present.
Each submitted answer is one ranking (equal ranks tied); a discarded one marks the responses
all bad. Drafts are not judgments and are left out; a record without answers is a set still
to be ranked. Other questions are not read (only rankings have a place here).
"""

from __future__ import annotations

from typing import Any

from .base import Candidate, RowInvalid, json_type, optional_text, prompt_messages
from .sets import SETS, ParsedSet, RankSpec, distinct_candidates, groups_from_ranks

NAME = "argilla"
KIND = SETS
SHAPE = (
    '{"fields": {"prompt", ...}, "responses": [{"values": {question: {"value": '
    '[{"rank", "value"}]}}}]}: Argilla ranking records'
)
PROMPT_FIELDS = ("prompt", "instruction", "input", "question", "text")


def matches(row: dict[str, Any]) -> bool:
    return isinstance(row.get("fields"), dict) and "responses" in row


def _is_ranking(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and "rank" in v and "value" in v for v in value)
    )


def _answers(responses: Any) -> list[tuple[str, str, str, Any]]:
    """(question, user id, status, value) of every answer, from either record shape."""
    answers = []
    if isinstance(responses, list):  # 1.x
        for response in responses:
            if not isinstance(response, dict):
                raise RowInvalid("each of responses must be an object")
            values = response.get("values") or {}
            if not values:  # discarded without answering
                answers.append(
                    ("", str(response.get("user_id") or ""), response.get("status"), None)
                )
            for question, answer in values.items():
                value = answer.get("value") if isinstance(answer, dict) else answer
                answers.append(
                    (question, str(response.get("user_id") or ""), response.get("status"), value)
                )
    elif isinstance(responses, dict):  # 2.x
        for question, listed in responses.items():
            for answer in listed if isinstance(listed, list) else []:
                if isinstance(answer, dict):
                    answers.append(
                        (
                            question,
                            str(answer.get("user_id") or ""),
                            answer.get("status"),
                            answer.get("value"),
                        )
                    )
    elif responses is not None:
        raise RowInvalid(f"responses must be a list or an object, not {json_type(responses)}")
    return [(q, u, s or "submitted", v) for q, u, s, v in answers]


def parse(row: dict[str, Any]) -> ParsedSet:
    fields: dict[str, Any] = row["fields"]
    prompt_name = next((n for n in PROMPT_FIELDS if fields.get(n) not in (None, "")), None)
    if prompt_name is None:
        raise RowInvalid(f"fields hold no prompt (one of {', '.join(PROMPT_FIELDS)})")
    answers = [
        a for a in _answers(row.get("responses")) if _is_ranking(a[3]) or a[2] == "discarded"
    ]
    questions = sorted({q for q, _, _, v in answers if _is_ranking(v)})
    if len(questions) > 1:
        raise RowInvalid(f"more than one ranking question ({', '.join(questions)})")
    named = [n for n in fields if n != prompt_name and isinstance(fields[n], str)]
    # The responses: the fields an answer ranks, else (no answers yet) every other text field.
    ranked = [v["value"] for _, _, _, value in answers if _is_ranking(value) for v in value]
    names = [n for n in named if n in ranked] if ranked else named
    unknown = sorted({str(v) for v in ranked} - set(fields))
    if unknown:
        raise RowInvalid(f"the ranking names {', '.join(unknown)}, which are not fields")
    if len(names) < 2:
        raise RowInvalid("a ranking needs at least two response fields")
    candidates = [Candidate(fields[n]) for n in names]
    distinct_candidates(candidates, "response fields")
    index = {n: i for i, n in enumerate(names)}
    rankings = []
    for number, (question, user, status, value) in enumerate(answers, 1):
        where = f"answer {number} ({question}{', ' + user if user else ''})"
        key = f"{question}:{user or number}"
        if status == "draft":
            continue
        if not _is_ranking(value):  # discarded without a ranking
            rankings.append(RankSpec([], all_bad=True, key=key))
            continue
        seen = [v["value"] for v in value]
        repeated = sorted({str(n) for n in seen if seen.count(n) > 1})
        if repeated:
            raise RowInvalid(f"{where} ranks {', '.join(repeated)} twice")
        missing = [n for n in names if n not in seen]
        if missing:
            raise RowInvalid(f"{where} leaves out {', '.join(missing)}")
        groups = groups_from_ranks(
            [(index[v["value"]], v["rank"]) for v in value], where, ties=True
        )
        rankings.append(RankSpec(groups, all_bad=status == "discarded", key=key))
    extra = {k: v for k, v in fields.items() if k != prompt_name and k not in names}
    metadata = row.get("metadata") if isinstance(row.get("metadata"), dict) else {}
    return ParsedSet(
        prompt=prompt_messages(fields[prompt_name], prompt_name),
        candidates=candidates,
        rankings=rankings,
        external_id=optional_text(row, "external_id", "id"),
        metadata={**metadata, **({"fields": extra} if extra else {})},
        row_id=optional_text(row, "external_id", "id"),
    )
