"""Pages of the labeling app."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<slug:slug>/label/", views.label, name="label"),
    path("projects/<slug:slug>/instructions/", views.instructions, name="instructions"),
]
