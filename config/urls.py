"""URL map: pages of the labeling app, the reward-model pages, the API and its schema, the admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from annotate.integers import PATH_CONVERTERS

# `<id:...>` and `<id32:...>`: ids bounded by their columns' range, registered before the
# apps' URL maps (included below) use them; an id past the range is a 404, not a 500.
for name, converter in PATH_CONVERTERS.items():
    register_converter(converter, name)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("annotate.api.urls")),
    path("api/", include("rewardtrain.api_urls")),
    path("", include("rewardtrain.urls")),
    path("", include("annotate.urls")),
]

# A request body over the size limit answers 413, not Django's bare 400.
handler400 = "annotate.views_errors.bad_request"
