"""Output shapes shared by the labeling API and the labeling page: a project's label scale,
a leased Pair as the labeler sees it (responses in display order, markdown pre-rendered to
safe HTML), and a stored Comparison."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from annotate.models import Choice, Comparison
from annotate.rendering import markdown_to_safe_html, response_to_safe_html
from annotate.selectors.labeling import project_scale
from annotate.services.labeling import LeasedPair, ShownResponse, StoredComparison

# The API's one datetime format (ISO 8601, UTC as "Z"), for payloads built by hand.
_DATETIME = serializers.DateTimeField()


class ScaleSerializer(serializers.Serializer):
    allow_tie = serializers.BooleanField()
    allow_both_bad = serializers.BooleanField()
    ask_strength = serializers.BooleanField()
    strength_labels = serializers.ListField(child=serializers.CharField())
    reason_tags = serializers.ListField(child=serializers.CharField())


class MessageSerializer(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField()
    html = serializers.CharField(help_text="The content as sanitized HTML.")


class ShownResponseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    html = serializers.CharField(help_text="The text as sanitized HTML.")


class LeasedPairSerializer(serializers.Serializer):
    pair_id = serializers.IntegerField()
    project = serializers.CharField(help_text="The project's slug.")
    prompt = serializers.CharField(help_text="The last user turn.")
    messages = MessageSerializer(many=True, help_text="The whole conversation, turn by turn.")
    responses = ShownResponseSerializer(many=True, help_text="Left first, then right.")
    scale = ScaleSerializer()
    lease_expires_at = serializers.DateTimeField()


def _shown(response: ShownResponse) -> dict[str, Any]:
    # An empty response gets a visible placeholder (rendering.response_to_safe_html).
    return {"id": response.id, "text": response.text, "html": response_to_safe_html(response.text)}


def leased_pair_payload(lease: LeasedPair) -> dict[str, Any]:
    """A leased Pair as its labeler sees it; the response order is the lease's left/right."""
    messages = [
        {
            "role": str(m.get("role", "")),
            "content": str(m.get("content", "")),
            "html": markdown_to_safe_html(str(m.get("content", ""))),
        }
        for m in lease.messages
    ]
    # Built as plain data: LeasedPairSerializer documents this shape in the schema, and a
    # test holds the two together; running a serializer per lease cost more CPU than the lease.
    return {
        "pair_id": lease.pair_id,
        "project": lease.project.slug,
        "prompt": lease.prompt_text,
        "messages": messages,
        "responses": [_shown(shown) for shown in lease.shown],
        "scale": project_scale(lease.project),
        "lease_expires_at": _DATETIME.to_representation(lease.expires_at),
    }


def comparison_payload(comparison: Comparison | StoredComparison) -> dict[str, Any]:
    """A stored Comparison as its labeler sees it (the shape ComparisonOutputSerializer
    documents); `preferred` is the response id they chose, or the choice itself."""
    if isinstance(comparison, Comparison):
        comparison = StoredComparison.of(comparison)
    if comparison.choice == Choice.A:
        preferred = str(comparison.response_a_id)
    elif comparison.choice == Choice.B:
        preferred = str(comparison.response_b_id)
    else:
        preferred = comparison.choice
    return {
        "id": comparison.id,
        "pair_id": comparison.pair_id,
        "project": comparison.project_slug,
        "choice": comparison.choice,
        "preferred": preferred,
        "strength": comparison.strength,
        "reasons": list(comparison.reasons),
        "comment": comparison.comment,
        "left": comparison.left,
        "time_spent_ms": comparison.time_spent_ms,
        "created_at": _DATETIME.to_representation(comparison.created_at),
    }
