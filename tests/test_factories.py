"""tests/factories.py holds one factory per model of the two apps, and each builds a row the
database accepts (constraints included) with nothing given."""

import inspect

import factory
import pytest
from django.apps import apps

from tests import factories

pytestmark = pytest.mark.django_db

FACTORIES = {
    cls._meta.model: cls
    for _, cls in inspect.getmembers(factories, inspect.isclass)
    if issubclass(cls, factory.django.DjangoModelFactory) and cls._meta.model is not None
}
MODELS = [
    model
    for app in ("annotate", "rewardtrain")
    for model in apps.get_app_config(app).get_models()
    if not model._meta.proxy
]


def test_every_model_has_a_factory():
    assert sorted(m.__name__ for m in MODELS if m not in FACTORIES) == []


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_each_factory_makes_a_valid_row(model):
    row = FACTORIES[model]()
    row.full_clean()
    assert model.objects.filter(pk=row.pk).exists()
