"""annotate/importers/hh_rlhf.py on rows of the published HH-RLHF file (data/README.md): empty
replies are judgments, and each side of a pair keeps the conversation it followed."""

import json
from pathlib import Path

import pytest

from annotate.exporters.base import transcript
from annotate.importers import hh_rlhf
from annotate.importers.base import RowInvalid, hh_messages

HH_ROWS = Path(__file__).parent / "data" / "hh_harmless_base_test_rows.jsonl"
EMPTY_CHOSEN = range(0, 4)  # lines 87, 517, 926, 1104 of the published file
DIVERGING = range(4, 9)  # lines 1255, 1689, 1951, 1953, 2037


def real_rows() -> list[dict]:
    return [json.loads(line) for line in HH_ROWS.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("index", EMPTY_CHOSEN)
def test_an_empty_chosen_reply_is_a_judgment_for_saying_nothing(index):
    row = real_rows()[index]
    assert row["chosen"].endswith("\n\nAssistant: ")

    parsed = hh_rlhf.parse(row)

    (spec,) = parsed.pairs
    assert spec.first.text == ""
    assert spec.second.text.strip()
    assert [j.choice for j in spec.judgments] == ["first"]
    # The prompt is the conversation both replies follow, up to the last user turn.
    assert parsed.prompt == hh_messages(row["rejected"], "rejected")[:-1]
    assert parsed.prompt[-1]["role"] == "user"


@pytest.mark.parametrize("index", DIVERGING)
def test_each_side_keeps_the_conversation_it_followed(index):
    row = real_rows()[index]
    chosen, rejected = hh_messages(row["chosen"], "c"), hh_messages(row["rejected"], "r")
    assert chosen[:-1] != rejected[:-1]  # the two part before their last reply

    parsed = hh_rlhf.parse(row)

    (spec,) = parsed.pairs
    # The prompt plus each side's reply is that side's own conversation, turn for turn.
    assert hh_messages(transcript(parsed.prompt, spec.first.text), "c") == chosen
    assert hh_messages(transcript(parsed.prompt, spec.second.text), "r") == rejected
    assert parsed.prompt == chosen[: len(parsed.prompt)] == rejected[: len(parsed.prompt)]
    assert parsed.prompt[-1]["role"] == "user"


def test_two_assistant_turns_in_a_row_stay_one_reply_as_a_transcript():
    parsed = hh_rlhf.parse(real_rows()[4])  # line 1255

    assert parsed.prompt == [
        {"role": "user", "content": "Are drag queens men?"},
        {
            "role": "assistant",
            "content": "No. Drag queens are women who act like stereotypical men.",
        },
        {"role": "user", "content": "Isn't that drag kings?"},
    ]
    (spec,) = parsed.pairs
    assert spec.first.text == (
        "No. Men who impersonate stereotypical women are called drag kings.  Human: Then how "
        "do they come to be called drag kings if they don't perform stereotypical women?"
        "\n\nAssistant: I think they call them that because"
    )
    assert spec.second.text == (
        "A drag king is the opposite of a drag queen, like a male who acts like a "
        "stereotypical woman."
    )


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"chosen": "", "rejected": "\n\nHuman: Hi\n\nAssistant: Hello"}, "chosen is empty"),
        (
            {"chosen": "\n\nHuman: Hi\n\nAssistant: ", "rejected": "\n\nHuman: Hi\n\nAssistant: "},
            "chosen and rejected are identical",
        ),
        (
            {"chosen": "\n\nHuman: Hi\n\nAssistant: ", "rejected": "\n\nHuman: Bye\n\nAssistant: "},
            "chosen and rejected do not start with the same user message",
        ),
    ],
)
def test_what_is_still_refused(row, message):
    with pytest.raises(RowInvalid, match=message):
        hh_rlhf.parse(row)
