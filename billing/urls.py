"""The spend API at the root, as LiteLLM serves it (`/spend/logs`, `/global/spend/report`, …)."""

from django.urls import path

from billing.api.activity import UserDailyActivityView
from billing.api.reports import GlobalSpendReportView
from billing.api.spendlogs import SpendLogsView

urlpatterns = [
    path("spend/logs", SpendLogsView.as_view(), name="spend-logs"),
    path("global/spend/report", GlobalSpendReportView.as_view(), name="global-spend-report"),
    path("user/daily/activity", UserDailyActivityView.as_view(), name="user-daily-activity"),
]
