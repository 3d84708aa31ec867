"""annotate/services/catalog.py: get-or-create by content, pair order, the pair counter."""

import pytest

from annotate.hashing import user_message
from annotate.models import Pair
from annotate.services.catalog import (
    pair_get_or_create,
    project_get_or_create,
    prompt_get_or_create,
    response_get_or_create,
)


@pytest.mark.django_db
def test_get_or_create_returns_the_stored_rows(project):
    prompt, created = prompt_get_or_create(
        project=project, messages=user_message("Hi?"), external_id="p1", metadata={"k": 1}
    )
    again, created_again = prompt_get_or_create(
        project=project, messages=user_message("Hi?"), external_id="other"
    )
    assert created and not created_again and again.pk == prompt.pk
    assert again.external_id == "p1" and again.metadata == {"k": 1}

    one, _ = response_get_or_create(prompt=prompt, text="Hello", model_name="m1")
    same, created = response_get_or_create(prompt=prompt, text="Hello")
    assert same.pk == one.pk and not created and same.model_name == "m1"


@pytest.mark.django_db
def test_pair_is_ordered_by_response_id_and_counted(project):
    prompt, _ = prompt_get_or_create(project=project, messages=user_message("Q"))
    first, _ = response_get_or_create(prompt=prompt, text="one")
    second, _ = response_get_or_create(prompt=prompt, text="two")

    pair, created, swapped = pair_get_or_create(
        project=project, prompt=prompt, first=second, second=first
    )
    assert created and swapped
    assert (pair.response_a_id, pair.response_b_id) == (first.pk, second.pk)

    same, created, swapped = pair_get_or_create(
        project=project, prompt=prompt, first=first, second=second, is_open=False
    )
    assert same.pk == pair.pk and not created and not swapped and same.is_open
    project.refresh_from_db()
    assert project.pair_count == 1 == Pair.objects.count()

    with pytest.raises(ValueError):
        pair_get_or_create(project=project, prompt=prompt, first=first, second=first)


@pytest.mark.django_db
def test_project_get_or_create_names_it_after_the_slug():
    project, created = project_get_or_create(slug="fresh")
    assert created and project.name == "fresh"
    assert project_get_or_create(slug="fresh") == (project, False)
