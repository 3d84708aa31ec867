"""Every model of the labeling app in the Django admin.

Tables that grow large (pairs, comparisons, leases, prompts, responses) use raw-id widgets
instead of dropdowns of every row, and skip the full COUNT(*) under filtered lists.
"""

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html_join

from annotate.models import (
    Comparison,
    GeneratedSample,
    GenerationJob,
    Generator,
    ImportBatch,
    Judge,
    JudgeVerdict,
    JudgingJob,
    Lease,
    Membership,
    Pair,
    Project,
    Prompt,
    Response,
)
from annotate.services.generation import generation_job_cancel
from annotate.services.judges import (
    JudgingInvalid,
    is_judge_username,
    judge_add,
    judge_check,
    judging_job_cancel,
)
from annotate.services.judges_verdict import (
    memberships_verdict_recounted,
    pairs_verdict_recounted,
)
from annotate.services.projects import memberships_set_excluded
from annotate.services.rankings import JudgmentInvalid, aspects_validate


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    raw_id_fields = ["user"]
    fields = ["user", "excluded", "excluded_reason", "created_at"]
    readonly_fields = ["created_at"]


# Staff's edits here to what judge-first's verdicts summarize (a judge's comparison, a
# membership's exclusion) recount the pairs they touch, as the services' own writes do
# (annotate.services.judges_verdict).
def _memberships_recounted(changed: Iterable[forms.ModelForm]) -> AbstractContextManager:
    """Around saving these membership forms: the verdicts of the pairs judged by the accounts
    they touch, before the edit and after, recounted."""
    projects, users = set(), set()
    for form in changed:
        projects |= {form.instance.project_id, form.initial.get("project")}
        users |= {form.instance.user_id, form.initial.get("user")}
    return memberships_verdict_recounted(project_ids=projects - {None}, user_ids=users - {None})


class ProjectAdminForm(forms.ModelForm):
    """The aspects checked as the rankings service checks them, as a form error; a person
    editing them here is also asked for each weight that has no default."""

    def clean_aspects(self) -> list[dict[str, Any]]:
        try:
            return aspects_validate(self.cleaned_data["aspects"], require_weights=True)
        except JudgmentInvalid as error:
            raise forms.ValidationError(str(error)) from None


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectAdminForm
    list_display = [
        "name",
        "slug",
        "redundancy",
        "pair_count",
        "comparison_count",
        "ask_strength",
        "selection",
        "auto_retrain",
        "created_at",
    ]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["pair_count", "comparison_count", "created_at", "pages"]
    inlines = [MembershipInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "instructions", "redundancy", "lease_minutes"]}),
        (
            "Task: pairs, or rankings and ratings",
            {"fields": ["task_kind", "ranking_size", "aspects"]},
        ),
        (
            "Label scale",
            {
                "fields": [
                    "allow_tie",
                    "allow_both_bad",
                    "ask_strength",
                    "strength_labels",
                    "reason_tags",
                ]
            },
        ),
        (
            "Quality control",
            {"fields": ["aggregation", "gold_rate", "repeat_rate", "quality_bands"]},
        ),
        (
            "Reward model",
            {
                "fields": [
                    "reward_backbone",
                    "training_config",
                    "auto_retrain",
                    "retrain_min_new_comparisons",
                    "retrain_interval_minutes",
                    "selection",
                    "random_share",
                    "ensemble_size",
                ]
            },
        ),
        (
            "AI judges",
            {
                "fields": [
                    "judges_in_training",
                    "judges_count_toward_redundancy",
                    "judge_first",
                    "judge_first_margin",
                ]
            },
        ),
        ("Counters", {"fields": ["pair_count", "comparison_count", "created_at"]}),
        ("Pages", {"fields": ["pages"]}),
    ]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        touched = [f for f in formset.forms if f.has_changed()] + list(formset.deleted_forms)
        with _memberships_recounted(touched):
            super().save_formset(request, form, formset, change)

    @admin.display(description="Staff pages")
    def pages(self, obj: Project) -> str:
        if not obj.pk:
            return "Save the project first."
        links = [
            ("project-import", "Import a file of pairs or judgments"),
            ("project-export", "Export the dataset"),
            ("training-page", "Training"),
            ("project-quality", "Quality"),
            ("project-review", "Review queue"),
            ("project-judges", "AI judges"),
        ]
        return format_html_join(
            " · ", '<a href="{}">{}</a>', ((reverse(name, args=[obj.slug]), t) for name, t in links)
        )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "project", "excluded", "excluded_reason", "created_at"]
    list_filter = ["excluded", "project"]
    search_fields = ["user__username", "project__slug"]
    raw_id_fields = ["user"]
    list_select_related = ["user", "project"]
    actions = ["exclude_labelers", "include_labelers"]

    @admin.display(description="Kind")
    def kind(self, obj: Membership) -> str:
        return labeler_kind(obj.user.username)

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        with _memberships_recounted([form]):
            super().save_model(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        with memberships_verdict_recounted(project_ids=[obj.project_id], user_ids=[obj.user_id]):
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        rows = list(queryset.values_list("project_id", "user_id"))
        with memberships_verdict_recounted(
            project_ids={p for p, _ in rows}, user_ids={u for _, u in rows}
        ):
            super().delete_queryset(request, queryset)

    @admin.action(description="Exclude labeler (work stays stored, leaves training and export)")
    def exclude_labelers(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        changed = memberships_set_excluded(
            memberships=queryset, excluded=True, reason=f"Excluded by {request.user} in the admin"
        )
        self.message_user(request, f"Excluded {changed} labeler(s).", messages.SUCCESS)

    @admin.action(description="Include labeler again")
    def include_labelers(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        changed = memberships_set_excluded(memberships=queryset, excluded=False)
        self.message_user(request, f"Included {changed} labeler(s) again.", messages.SUCCESS)


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "__str__", "project", "external_id", "created_at"]
    list_filter = ["project"]
    search_fields = ["external_id", "content_hash"]
    list_select_related = ["project"]
    readonly_fields = ["content_hash", "created_at"]
    show_full_result_count = False


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ["id", "__str__", "model_name", "prompt_id", "created_at"]
    list_filter = ["prompt__project"]
    search_fields = ["model_name", "content_hash"]
    raw_id_fields = ["prompt", "generator"]
    readonly_fields = ["content_hash", "created_at"]
    show_full_result_count = False


@admin.register(Generator)
class GeneratorAdmin(admin.ModelAdmin):
    """API keys are never here: `api_key_env` names the variable that holds one."""

    list_display = ["name", "project", "model", "base_url", "api_key_env", "concurrency"]
    list_filter = ["project"]
    search_fields = ["name", "model"]
    readonly_fields = ["created_at"]


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "status", "done", "total", "errors", "pairs_created"]
    list_filter = ["project", "status"]
    readonly_fields = [
        *("status", "done", "total", "prompt_tokens", "completion_tokens", "errors"),
        *("pairs_created", "cancel_requested", "error", "created_at", "started_at"),
        "finished_at",
    ]
    raw_id_fields = ["prompts", "created_by"]
    actions = ["cancel"]

    @admin.action(description="Cancel the selected jobs (samples already in stay)")
    def cancel(self, request: HttpRequest, queryset: QuerySet) -> None:
        active = queryset.filter(status__in=[GenerationJob.Status.QUEUED, "running"])
        for job in active:
            generation_job_cancel(job=job)
        self.message_user(request, f"Asked {len(active)} job(s) to stop.", messages.SUCCESS)


@admin.register(GeneratedSample)
class GeneratedSampleAdmin(admin.ModelAdmin):
    list_display = ["id", "generator", "prompt_id", "index", "response_id", "job_id"]
    list_filter = ["generator__project"]
    raw_id_fields = ["prompt", "response", "job"]
    show_full_result_count = False


JUDGE_FORM_FIELDS = (
    *("project", "name", "base_url", "model", "api_key_env", "temperature", "top_p"),
    *("max_tokens", "seed", "concurrency", "rubric"),
)


class JudgeAdminForm(forms.ModelForm):
    """The service's checks (URL, concurrency, the rubric's placeholders) as form errors."""

    class Meta:
        model = Judge
        fields = JUDGE_FORM_FIELDS

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        judge = Judge(**{k: v for k, v in data.items() if k in JUDGE_FORM_FIELDS})
        try:
            judge_check(judge)
        except JudgingInvalid as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data


@admin.register(Judge)
class JudgeAdmin(admin.ModelAdmin):
    """A judge added here gets its labeler account from the service, as from the page, the
    API and `manage.py add_judge`. API keys are never here: `api_key_env` names the variable."""

    form = JudgeAdminForm
    list_display = ["name", "project", "model", "base_url", "user", "concurrency", "created_at"]
    list_filter = ["project"]
    search_fields = ["name", "model", "user__username"]
    list_select_related = ["project", "user"]
    readonly_fields = ["user", "created_at"]

    def save_model(self, request: HttpRequest, obj: Judge, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        values = {k: getattr(obj, k) for k in JUDGE_FORM_FIELDS if k not in ("project", "name")}
        added = judge_add(project=obj.project, name=obj.name, **values)
        obj.pk, obj.user = added.pk, added.user


@admin.register(JudgingJob)
class JudgingJobAdmin(admin.ModelAdmin):
    list_display = [
        *("id", "project", "judge", "status", "done", "total", "comparisons_created"),
        *("unparsable", "errors", "created_at"),
    ]
    list_filter = ["project", "status"]
    list_select_related = ["project", "judge"]
    readonly_fields = [
        *("status", "done", "total", "comparisons_created", "unparsable", "errors"),
        *("prompt_tokens", "completion_tokens", "cancel_requested", "error", "created_at"),
        *("started_at", "finished_at"),
    ]
    raw_id_fields = ["created_by"]
    actions = ["cancel"]

    @admin.action(description="Cancel the selected jobs (readings already in stay)")
    def cancel(self, request: HttpRequest, queryset: QuerySet) -> None:
        active = queryset.filter(status__in=[JudgingJob.Status.QUEUED, "running"])
        for job in active:
            judging_job_cancel(job=job)
        self.message_user(request, f"Asked {len(active)} job(s) to stop.", messages.SUCCESS)


@admin.register(JudgeVerdict)
class JudgeVerdictAdmin(admin.ModelAdmin):
    """A judge's readings as the endpoint answered them (one per pair and order)."""

    list_display = [
        *("id", "judge", "pair_id", "order", "choice", "p_a", "attempts", "parse_error"),
        "created_at",
    ]
    list_filter = ["judge__project", "judge", "order", "choice"]
    list_select_related = ["judge"]
    raw_id_fields = ["pair", "job"]
    readonly_fields = ["created_at"]
    show_full_result_count = False


def labeler_kind(username: str) -> str:
    return "AI judge" if is_judge_username(username) else "Person"


@admin.register(Pair)
class PairAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project",
        "priority",
        "is_open",
        "human_count",
        "gold",
        "ambiguous",
        "model_p_a",
        "created_at",
    ]
    list_filter = ["project", "is_open", "ambiguous", "gold"]
    raw_id_fields = ["prompt", "response_a", "response_b"]
    list_select_related = ["project"]
    readonly_fields = ["human_count", "created_at"]
    show_full_result_count = False


@admin.register(Lease)
class LeaseAdmin(admin.ModelAdmin):
    list_display = ["id", "pair_id", "labeler", "left", "is_repeat", "expires_at", "created_at"]
    list_filter = ["pair__project", "is_repeat"]
    search_fields = ["labeler__username"]
    raw_id_fields = ["pair", "labeler"]
    list_select_related = ["labeler"]
    show_full_result_count = False


@admin.register(ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = [
        "file_name",
        "project",
        "format",
        "rows",
        "pairs_created",
        "comparisons_created",
        "created_by",
        "created_at",
    ]
    list_filter = ["project", "format"]
    search_fields = ["file_name"]
    list_select_related = ["project", "created_by"]
    raw_id_fields = ["created_by"]


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "pair_id",
        "project",
        "labeler",
        "source",
        "p_chosen",
        "choice",
        "strength",
        "left",
        "time_spent_ms",
        "is_repeat",
        "is_gold_check",
        "created_at",
    ]
    list_filter = ["project", "source", "choice", "is_repeat", "is_gold_check"]
    search_fields = ["labeler__username", "import_key", "comment"]
    raw_id_fields = ["pair", "labeler", "import_batch"]
    list_select_related = ["project", "labeler"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def save_model(self, request: HttpRequest, obj: Comparison, form: Any, change: bool) -> None:
        with pairs_verdict_recounted(pair_ids={obj.pair_id, form.initial.get("pair")} - {None}):
            super().save_model(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: Comparison) -> None:
        with pairs_verdict_recounted(pair_ids=[obj.pair_id]):
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Comparison]) -> None:
        with pairs_verdict_recounted(pair_ids=set(queryset.values_list("pair_id", flat=True))):
            super().delete_queryset(request, queryset)


# Login lockouts (django-axes): one row per username and address with failures. Unlocking
# forgets the row's failures, so the next sign-in from there is judged afresh.
admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class LoginAttemptAdmin(AccessAttemptAdmin):
    actions = [*AccessAttemptAdmin.actions, "unlock"]

    @admin.action(description="Unlock: forget these failed sign-ins", permissions=["delete"])
    def unlock(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        unlocked = sorted({f"{a.username} from {a.ip_address}" for a in queryset})
        queryset.delete()
        self.message_user(request, f"Unlocked: {', '.join(unlocked)}.", messages.SUCCESS)
