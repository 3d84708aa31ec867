"""The dataset card (README.md in Hugging Face style) written with every export: the manifest
rendered through templates/annotate/dataset_card.md."""

from __future__ import annotations

import json
from typing import Any

from django.template.loader import render_to_string

# A card is Markdown, not HTML: the template turns autoescape off. What users typed reaches it
# as today: the project name and file name JSON-quoted in the YAML header (a JSON string is a
# valid YAML scalar), the instructions inside a block quote.
TEMPLATE = "annotate/dataset_card.md"

SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
)


def dataset_card(manifest: dict[str, Any], *, instructions: str) -> str:
    """README.md for an export: YAML header, columns, label scale, instructions, counts, the
    aggregation rule, the filters and the snapshot hash."""
    project, data_file = manifest["project"], manifest["file"]
    return render_to_string(
        TEMPLATE,
        {
            "manifest": manifest,
            "pretty_name_yaml": _yaml_str(project["name"] + " preferences"),
            "data_file_yaml": _yaml_str(data_file),
            "size_category": _size_category(manifest["counts"]["rows"]),
            "loader": _loader(data_file),
            "instructions_quoted": "\n".join(
                "> " + line if line else ">" for line in instructions.splitlines()
            ),
            "counts": _count_rows(manifest["counts"]),
            "aggregation": manifest.get("aggregation", "majority"),
            "filters_json": json.dumps(manifest["filters"], indent=2, ensure_ascii=False),
        },
    )


def _yaml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _size_category(n: int) -> str:
    return next((name for limit, name in SIZE_CATEGORIES if n < limit), "n>10M")


def _loader(data_file: str) -> str:
    if data_file.endswith(".parquet"):
        return "parquet"
    return "csv" if data_file.endswith(".csv") else "json"


def _count_rows(counts: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, count) per table row; counts are text here so that no locale setting reformats
    them in the template."""
    rows = []
    for key, value in counts.items():
        if isinstance(value, dict):
            rows += [(f"{key}: {sub}", str(n)) for sub, n in value.items()]
        else:
            rows.append((key.replace("_", " "), str(value)))
    return rows
