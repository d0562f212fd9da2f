"""The marketplaces' push endpoints, mounted at ``/platforms/``."""

from django.urls import path

from . import views

app_name = "platforms"
urlpatterns = [
    path("kuaishou/push/<str:app_key>", views.push, {"platform": "kuaishou"}, name="kuaishou"),
    path("douyin/push/<str:app_key>", views.push, {"platform": "douyin"}, name="douyin"),
]
