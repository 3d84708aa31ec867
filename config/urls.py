"""URL map: pages of the labeling app, the reward-model pages, the API and its schema, the admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

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
