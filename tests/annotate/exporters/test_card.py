"""The dataset card, rendered from its template, is byte for byte the card the string-built
version wrote (tests/annotate/exporters/cards/: each manifest beside its card, taken from real
exports of the judged project in every format and from edge cases), and Hugging Face reads
its header as the card data it means."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard

from annotate.exporters.card import dataset_card

CARDS = Path(__file__).parent / "cards"
CASES = sorted(p.stem for p in CARDS.glob("*.json"))


def load(name: str) -> tuple[dict, str, bytes]:
    case = json.loads((CARDS / f"{name}.json").read_text(encoding="utf-8"))
    return case["manifest"], case["instructions"], (CARDS / f"{name}.md").read_bytes()


def test_every_format_and_edge_case_has_a_card():
    assert len(CASES) >= 12
    assert {load(name)[0]["format"] for name in CASES} == {
        "trl",
        "trl-conversational",
        "hh",
        "openai",
        "raw",
        "csv",
        "parquet",
    }


@pytest.mark.parametrize("name", CASES)
def test_card_is_byte_identical(name):
    manifest, instructions, expected = load(name)
    assert dataset_card(manifest, instructions=instructions).encode("utf-8") == expected


def test_front_matter_reads_as_hugging_face_card_data():
    manifest, instructions, _ = load("odd_names")
    data = DatasetCard(dataset_card(manifest, instructions=instructions)).data.to_dict()
    assert data == {
        "pretty_name": manifest["project"]["name"] + " preferences",
        "tags": ["rlhf", "reward-modeling", "preference", "prefloop"],
        "size_categories": ["n<1K"],
        "configs": [
            {"config_name": "default", "data_files": [{"split": "train", "path": manifest["file"]}]}
        ],
    }


def test_user_text_stays_text():
    manifest, instructions, _ = load("odd_names")
    card = dataset_card(manifest, instructions=instructions)
    # Markdown, not HTML: nothing escaped; a template tag in a name is printed, not run.
    assert '# Ünïcode "quoted" *name* <b>bold</b> {{ x }} {% y %} \\ back: human' in card
    assert ">   Indented <i>two</i> {{ z }}\n>\n>\n> # heading\n" in card
