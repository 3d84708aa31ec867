"""Staff pages of the reward model."""

urlpatterns: list = []
