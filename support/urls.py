from django.urls import path

from . import views

app_name = "support"

urlpatterns = [
    path("", views.TicketListView.as_view(), name="ticket_list"),
    path("counts/", views.QueueCountsView.as_view(), name="queue_counts"),
    path("bulk/", views.TicketBulkView.as_view(), name="ticket_bulk"),
    path("new/<int:pk>/", views.TicketCreateView.as_view(), name="ticket_create"),
    path("<int:pk>/", views.TicketDetailView.as_view(), name="ticket_detail"),
    path("<int:pk>/claim/", views.TicketClaimView.as_view(), name="ticket_claim"),
    path("<int:pk>/assign/", views.TicketAssignView.as_view(), name="ticket_assign"),
    path("<int:pk>/status/", views.TicketStatusView.as_view(), name="ticket_status"),
    path("<int:pk>/priority/", views.TicketPriorityView.as_view(), name="ticket_priority"),
    path("<int:pk>/notes/", views.TicketNoteView.as_view(), name="ticket_note"),
    path("<int:pk>/macro/", views.TicketMacroView.as_view(), name="ticket_macro"),
    path("<int:pk>/dispute/", views.TicketDisputeView.as_view(), name="ticket_dispute"),
    path("macros/", views.MacroListView.as_view(), name="macro_list"),
    path("macros/new/", views.MacroCreateView.as_view(), name="macro_create"),
    path("macros/<int:pk>/edit/", views.MacroUpdateView.as_view(), name="macro_update"),
]
