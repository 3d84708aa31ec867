"""The dataset card (README.md in Hugging Face style) written with every export, built from the
export's manifest."""

from __future__ import annotations

import json
from typing import Any

AGGREGATION = """\
Each row of a preference format is one Pair, aggregated from its Comparisons by
prefloop's shared rule (the same rule the reward model trains on):

- votes are counted by response (A better, B better, tie, both bad); swapped repeat
  judgments never count, nor do labelers that staff excluded (unless the export included
  them), nor pairs staff marked ambiguous;
- a staff adjudication, when present, replaces the votes;
- a pair where "both bad" has strictly the most votes is left out (counted below);
- otherwise the soft label is p(A) = (votes_AB * q + votes_tie / 2) / (votes_AB + votes_tie),
  votes_AB = votes_A + votes_B, where q is the manifest's `aggregation` of the A/B votes:
  `majority` takes the vote share votes_A / votes_AB; `dawid_skene`, `glad` and `mace` take
  the posterior P(A better) of a labeler-reliability model fitted to all the votes at once;
  `chosen` is the response with p > 0.5; p = 0.5 is a tie (`tie: true`, chosen is response A);
- `agreement` is the share of all votes that went to the most voted outcome;
- `p_chosen` is p for the chosen response;
- the split is a stable hash of the prompt, so a prompt never sits in two splits."""

COLUMNS = {
    "trl": "`prompt`, `chosen`, `rejected` (strings; a multi-turn prompt is an HH-style "
    "transcript ending in `Assistant:`)",
    "trl-conversational": "`prompt` (list of `{role, content}`), `chosen` and `rejected` "
    "(one assistant message each)",
    "hh": "`chosen`, `rejected`: whole transcripts `\\n\\nHuman: ...\\n\\nAssistant: ...`",
    "openai": "`input.messages`, `preferred_output`, `non_preferred_output` (no other keys)",
    "raw": "one Comparison per row: `comparison_id`, `pair_id`, `split`, `prompt` (messages), "
    "`response_a`, `response_b`, `model_a`, `model_b`, `choice` (a, b, tie or both_bad, by "
    "response), `strength`, `strength_label`, `left` (the response shown on the left), "
    "`labeler` (pseudonymous unless real usernames were asked for), `source`, `reasons`, "
    "`comment`, `time_spent_ms`, `created_at`, `is_gold_check`, `import_file`",
}
EXTRAS = (
    "After the core keys: `margin` (when the project asks strength: the mean stated strength "
    "of the winning votes, 0 for ties), `pair_id`, `split`, `votes_chosen`, `votes_rejected`, "
    "`votes_tie`, `votes_both_bad`, `agreement`, `p_chosen`, `tie`, `adjudicated`. TRL and "
    "`datasets` ignore columns they do not use."
)


def _size_category(n: int) -> str:
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ):
        if n < limit:
            return name
    return "n>10M"


def _yaml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid YAML scalar


def dataset_card(manifest: dict[str, Any], *, instructions: str) -> str:
    """README.md for an export: YAML header, columns, label scale, instructions, counts, the
    aggregation rule, the filters and the snapshot hash."""
    lines = _front_matter(manifest)
    lines += _label_scale(manifest["label_scale"])
    lines += _instructions_and_counts(instructions, manifest["counts"])
    lines += _provenance(manifest)
    return "\n".join(lines)


def _front_matter(manifest: dict[str, Any]) -> list[str]:
    """YAML header, how to load the file, its columns."""
    project = manifest["project"]
    counts = manifest["counts"]
    data_file = manifest["file"]
    loader = (
        "parquet"
        if data_file.endswith(".parquet")
        else ("csv" if data_file.endswith(".csv") else "json")
    )
    lines = [
        "---",
        f"pretty_name: {_yaml_str(project['name'] + ' preferences')}",
        "tags:",
        "- rlhf",
        "- reward-modeling",
        "- preference",
        "- prefloop",
        "size_categories:",
        f"- {_size_category(counts['rows'])}",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        f"    path: {_yaml_str(data_file)}",
        "---",
        "",
        f"# {project['name']}: human preference data",
        "",
        f"Exported by prefloop from project `{project['slug']}` at {manifest['exported_at']} "
        f"in the `{manifest['format']}` format"
        + (f" ({manifest['shape']} columns)" if manifest["format"] in ("csv", "parquet") else "")
        + ".",
        "",
        "All rows sit in the one file (the `train` split of the loader); the `split` column "
        "holds the trainer's train / validation / test split.",
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("{loader}", data_files="{data_file}")["train"]',
        "```",
        "",
        "## Columns",
        "",
        COLUMNS.get(manifest["shape"], COLUMNS["trl"]) + ".",
        "",
    ]
    if manifest["rows_are"] == "preference" and manifest["format"] != "openai":
        lines += [EXTRAS, ""]
    return lines


def _label_scale(scale: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    lines += [
        "## Label scale",
        "",
        "Labelers saw one prompt and two responses (left and right at random) and picked:",
        "",
        "- A better / B better",
    ]
    if scale["allow_tie"]:
        lines.append("- Tie")
    if scale["allow_both_bad"]:
        lines.append("- Both bad")
    if scale["ask_strength"]:
        levels = ", ".join(f"{i} = {name}" for i, name in enumerate(scale["strength_labels"], 1))
        lines += ["", f"Strength of the preference: {levels}."]
    if scale["reason_tags"]:
        lines += ["", "Optional reason tags: " + ", ".join(scale["reason_tags"]) + "."]
    return lines


def _instructions_and_counts(instructions: str, counts: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    lines += [
        "",
        "## Instructions given to labelers",
        "",
        "\n".join("> " + line if line else ">" for line in instructions.splitlines()) or "_(none)_",
        "",
        "## Counts",
        "",
        "| what | count |",
        "| --- | ---: |",
    ]
    for key, value in counts.items():
        if isinstance(value, dict):
            for sub, n in value.items():
                lines.append(f"| {key}: {sub} | {n} |")
        else:
            lines.append(f"| {key.replace('_', ' ')} | {value} |")
    return lines


def _provenance(manifest: dict[str, Any]) -> list[str]:
    """The aggregation rule, the filters and the snapshot hash."""
    lines: list[str] = []
    lines += [
        "",
        "## How it was aggregated",
        "",
        f"Aggregation: `{manifest.get('aggregation', 'majority')}`.",
        "",
        AGGREGATION,
        "",
        "## Filters",
        "",
        "```json",
        json.dumps(manifest["filters"], indent=2, ensure_ascii=False),
        "```",
        "",
        "## Snapshot",
        "",
        f"Content hash `{manifest['snapshot']['content_hash']}`: the hash prefloop's trainer "
        "records for the same preference rows (see `manifest.json`).",
        "",
    ]
    return lines
