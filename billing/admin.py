"""The price book, editable with effective dates; the usage ledger and daily table, read-only.

A price is changed by adding a row that takes effect from a date ("Save as new" on the current
one), not by editing the past: calls already made keep the unit prices their usage row recorded.
The ledger is append-only, so its admin can neither add, change nor delete; key digests never
render (`key_name`, "sk-...abcd", is the safe hint). The usage list exports what it shows —
the filtered rows, or the selected ones — as CSV, streamed (billing/api/csvexport.py), so a
month of usage never sits in memory. Price changes are in the audit log (tenants/audit.py).
"""

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import path
from django.utils import timezone

from billing.admin_filters import DateRangeFilter, DayRangeFilter, KeyFilter, ModelFilter, TeamFilter
from billing.api import csvexport
from billing.models import DailyUsage, ModelPrice, UsageRecord
from billing.pricebook import PRICE_LISTS
from billing.prices import MILLION
from tenants.admin_audit import AuditedAdmin

PER_TOKEN_HELP = "USD per token: $2 per million tokens is 0.000002."


def per_million(usd_per_token: Decimal | None) -> str:
    """Return a per-token price as providers publish it: "$2.50 / 1M"."""
    if usd_per_token is None:
        return "—"
    return f"${(usd_per_token * MILLION).normalize():f} / 1M"


class ModelPriceForm(forms.ModelForm):
    price_list = forms.ChoiceField(
        choices=[(name, name) for name in sorted(set(PRICE_LISTS.values()))],
        help_text="Deployments bill by the list their provider/ prefix names (codestral/ → mistral).",
    )

    class Meta:
        model = ModelPrice
        fields = [
            "price_list",
            "model",
            "input_cost_per_token",
            "output_cost_per_token",
            "max_output_tokens",
            "effective_from",
            "note",
        ]
        help_texts = {"input_cost_per_token": PER_TOKEN_HELP, "output_cost_per_token": PER_TOKEN_HELP}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            self.fields["effective_from"].initial = timezone.now

    def clean_model(self) -> str:
        return self.cleaned_data["model"].strip()

    def clean_input_cost_per_token(self) -> Decimal:
        return _not_negative(self.cleaned_data["input_cost_per_token"])

    def clean_output_cost_per_token(self) -> Decimal:
        return _not_negative(self.cleaned_data["output_cost_per_token"])


def _not_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise forms.ValidationError("A price cannot be negative.")
    return value


class InEffectFilter(admin.SimpleListFilter):
    title = "in effect"
    parameter_name = "in_effect"

    def lookups(self, request, model_admin):
        return [("yes", "In effect now"), ("scheduled", "Scheduled"), ("superseded", "Superseded")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(id=F("current_id"))
        if self.value() == "scheduled":
            return queryset.filter(effective_from__gt=now)
        if self.value() == "superseded":
            return queryset.filter(effective_from__lte=now).exclude(id=F("current_id"))
        return queryset


def with_current(queryset: QuerySet[ModelPrice]) -> QuerySet[ModelPrice]:
    """Annotate each price with the id of the row in effect now for its model (what billing uses)."""
    current = ModelPrice.objects.filter(
        price_list=OuterRef("price_list"), model=OuterRef("model"), effective_from__lte=timezone.now()
    ).order_by("-effective_from")
    return queryset.annotate(current_id=Subquery(current.values("id")[:1]))


@admin.register(ModelPrice)
class ModelPriceAdmin(AuditedAdmin):
    form = ModelPriceForm
    list_display = ["price_list", "model", "input_shown", "output_shown", "effective_from", "status", "note"]
    list_filter = ["price_list", InEffectFilter]
    search_fields = ["model"]
    readonly_fields = ["per_million_shown", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["price_list", "model", "effective_from", "note"]}),
        ("Price", {"fields": ["input_cost_per_token", "output_cost_per_token", "per_million_shown"]}),
        ("Limits", {"fields": ["max_output_tokens"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]
    save_as = True  # "Save as new": the way to schedule a new price from the current one

    def get_queryset(self, request):
        return with_current(super().get_queryset(request))

    @admin.display(description="input", ordering="input_cost_per_token")
    def input_shown(self, price: ModelPrice) -> str:
        return per_million(price.input_cost_per_token)

    @admin.display(description="output", ordering="output_cost_per_token")
    def output_shown(self, price: ModelPrice) -> str:
        return per_million(price.output_cost_per_token)

    @admin.display(description="per million tokens")
    def per_million_shown(self, price: ModelPrice) -> str:
        if not price.pk:
            return "—"
        return f"in {per_million(price.input_cost_per_token)}, out {per_million(price.output_cost_per_token)}"

    @admin.display(description="in effect now?")
    def status(self, price: ModelPrice) -> str:
        if price.effective_from > timezone.now():
            return "scheduled"
        return "yes" if price.pk == getattr(price, "current_id", None) else "superseded"


class StatusFilter(admin.SimpleListFilter):
    """By class of status, not by each distinct value: no DISTINCT over the whole ledger."""

    title = "status"
    parameter_name = "status_class"
    CLASSES = {
        "ok": ("2xx: answered", Q(status__lt=300)),
        "client": ("4xx: refused or bad request", Q(status__gte=400, status__lt=500) & ~Q(status=499)),
        "gone": ("499: caller went away", Q(status=499)),
        "upstream": ("5xx: failed", Q(status__gte=500)),
    }

    def lookups(self, request, model_admin):
        return [(name, label) for name, (label, _) in self.CLASSES.items()]

    def queryset(self, request, queryset):
        chosen = self.CLASSES.get(self.value() or "")
        return queryset if chosen is None else queryset.filter(chosen[1])


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by billing code: viewable, never added, edited or deleted by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ExportsCSV(ReadOnlyAdmin):
    """A read-only list with "Export CSV": the rows its filters select (button), or those ticked (action)."""

    csv_columns: list[str] = []
    csv_name = "export.csv"
    actions = ["export_csv"]
    change_list_template = "admin/billing/change_list_export.html"

    def get_urls(self) -> list:
        name = f"{self.opts.app_label}_{self.opts.model_name}_export"
        export = path("export.csv", self.admin_site.admin_view(self.export_view), name=name)
        return [export, *super().get_urls()]

    def export_view(self, request: HttpRequest) -> StreamingHttpResponse:
        """Every row the list's filters select, with the list's ordering; not only one page."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        return self.stream_csv(changelist.get_queryset(request))

    @admin.action(description="Export selected rows as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> StreamingHttpResponse:
        return self.stream_csv(queryset)

    def stream_csv(self, queryset: QuerySet) -> StreamingHttpResponse:
        rows = queryset.values_list(*self.csv_columns).iterator(chunk_size=2000)
        return csvexport.stream(self.csv_name, self.csv_columns, rows)


@admin.register(UsageRecord)
class UsageRecordAdmin(ExportsCSV):
    list_display = [
        "ended_at",
        "request_id",
        "key_name",
        "team_id",
        "user_id",
        "model",
        "provider",
        "total_tokens",
        "cost",
        "status",
    ]
    list_filter = [
        DateRangeFilter,
        TeamFilter,
        KeyFilter,
        ModelFilter,
        StatusFilter,
        "provider",
        "stream",
        "tokens_estimated",
    ]
    search_fields = ["=request_id", "=key_name", "=team_id", "=user_id"]
    date_hierarchy = "ended_at"
    ordering = ["-ended_at"]
    exclude = ["key_hash"]
    show_full_result_count = False  # no second COUNT(*) over the whole ledger on each filtered page
    csv_name = "usage.csv"
    csv_columns = [  # the key by its hint only: never its digest
        "request_id",
        "started_at",
        "ended_at",
        "endpoint",
        "key_name",
        "team_id",
        "user_id",
        "end_user",
        "model",
        "model_group",
        "provider",
        "provider_model",
        "deployment_id",
        "attempts",
        "stream",
        "status",
        "error_type",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "tokens_estimated",
        "cost",
        "input_cost_per_token",
        "output_cost_per_token",
        "price_source",
        "latency_ms",
        "time_to_first_token_ms",
    ]


@admin.register(DailyUsage)
class DailyUsageAdmin(ExportsCSV):
    list_display = [
        "day",
        "team_id",
        "user_id",
        "end_user",
        "model",
        "provider",
        "requests",
        "errors",
        "total_tokens",
        "spend",
    ]
    list_filter = [DayRangeFilter, TeamFilter, ModelFilter, "provider"]
    search_fields = ["=team_id", "=user_id", "model"]
    date_hierarchy = "day"
    ordering = ["-day"]
    exclude = ["key_hash"]
    show_full_result_count = False
    csv_name = "daily-usage.csv"
    csv_columns = [
        "day",
        "team_id",
        "user_id",
        "end_user",
        "model",
        "provider",
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "spend",
    ]
