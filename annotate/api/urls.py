"""API routes of the labeling app."""

urlpatterns: list = []
