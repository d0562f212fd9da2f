from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from . import views

# The back office's 403 page speaks the interface language and offers a way back.
handler403 = "strategies.admin.denied.permission_denied"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("healthz", views.health, name="health"),
    path("api/v1/", include("strategies.platforms.generic.urls")),
    path("platforms/", include("strategies.platforms.push.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/monitoring/", include("monitoring.urls")),
    path("admin/", admin.site.urls),
]
