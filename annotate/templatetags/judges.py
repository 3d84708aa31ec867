"""The "AI judge" mark beside a labeler's name: a judge's account is one of the project's
labelers (annotate/services/judges.py), and every list of labelers says which are judges."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from annotate.services.judges import is_judge_username

register = template.Library()


@register.simple_tag
def ai_judge_badge() -> SafeString:
    return format_html('<span class="badge ai-judge" title="{}">AI judge</span>', "An AI judge")


@register.simple_tag
def ai_judge_mark(username: str | None) -> SafeString:
    """The badge when `username` is a judge's account, else nothing."""
    if username and is_judge_username(str(username)):
        return ai_judge_badge()
    return format_html("")
