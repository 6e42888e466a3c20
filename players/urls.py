from django.urls import path

from . import views

app_name = "players"

urlpatterns = [
    path("", views.PlayerListView.as_view(), name="player_list"),
    path("<int:pk>/", views.PlayerDetailView.as_view(), name="player_detail"),
    path("<int:pk>/timeline/", views.PlayerTimelineView.as_view(), name="player_timeline"),
    path("<int:pk>/status/", views.PlayerStatusView.as_view(), name="player_status"),
    path(
        "<int:pk>/restrictions/",
        views.PlayerRestrictionsView.as_view(),
        name="player_restrictions",
    ),
    path("<int:pk>/notes/new/", views.PlayerNoteCreateView.as_view(), name="player_note_add"),
    path("<int:pk>/tags/", views.PlayerTagsView.as_view(), name="player_tags"),
    path("tags/", views.TagListView.as_view(), name="tag_list"),
    path("tags/new/", views.TagCreateView.as_view(), name="tag_create"),
    path("tags/<int:pk>/edit/", views.TagUpdateView.as_view(), name="tag_update"),
]
