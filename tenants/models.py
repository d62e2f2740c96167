"""Who may call Tollgate: the master key, internal users, teams and their virtual keys.

Field names follow LiteLLM's management API (`max_budget`, `budget_duration`, `key_alias`,
`team_id`, `user_id`), so its JSON maps one to one onto these rows.
"""

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q


def new_id() -> str:
    return str(uuid.uuid4())


class MasterKey(models.Model):
    """The proxy's root credential, as the config file or environment gave it.

    Only its SHA-256 digest is stored. When the config names it by reference
    (`os.environ/LITELLM_MASTER_KEY`) the reference is kept too, to show where it comes from.
    """

    digest = models.CharField(max_length=64)
    hint = models.CharField(max_length=16)  # "sk-...abcd": safe to show and log
    reference = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=500, blank=True, help_text="The config file it came from.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.hint


class BudgetFields(models.Model):
    """Spend and rate limits, shared by keys, users and teams. Empty limits do not limit."""

    max_budget = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    soft_budget = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    budget_duration = models.CharField(max_length=16, blank=True, help_text="30s, 1h, 1d, 7d, 30d, 1mo …")
    budget_reset_at = models.DateTimeField(null=True, blank=True)
    spend = models.DecimalField(max_digits=20, decimal_places=10, default=0)
    rpm_limit = models.PositiveIntegerField(null=True, blank=True)
    tpm_limit = models.PositiveBigIntegerField(null=True, blank=True)
    max_parallel_requests = models.PositiveIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Admission counters for the database path (no Redis); see tenants/limits.py.
    reserved = models.DecimalField(max_digits=20, decimal_places=10, default=0, editable=False)
    in_flight = models.PositiveIntegerField(default=0, editable=False)
    window_minute = models.BigIntegerField(default=0, editable=False)
    window_requests = models.PositiveIntegerField(default=0, editable=False)
    window_tokens = models.BigIntegerField(default=0, editable=False)

    class Meta:
        abstract = True


class Team(BudgetFields):
    """A group of users sharing models, limits and a budget; its keys spend from all three."""

    team_id = models.CharField(max_length=255, unique=True, default=new_id)
    team_alias = models.CharField(max_length=255, blank=True)
    allowed_models = models.JSONField(
        default=list, blank=True, help_text="Model aliases (API: `models`); empty: every model."
    )
    model_aliases = models.JSONField(default=dict, blank=True)
    blocked = models.BooleanField(default=False, help_text="Blocks every key of the team.")
    team_member_permissions = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["team_alias", "team_id"]

    def __str__(self) -> str:
        return self.team_alias or self.team_id


class InternalUser(BudgetFields):
    """A person (or service) known to the proxy: LiteLLM's "user", owner of keys, member of teams."""

    class Role(models.TextChoices):
        PROXY_ADMIN = "proxy_admin"
        PROXY_ADMIN_VIEWER = "proxy_admin_viewer"
        INTERNAL_USER = "internal_user"
        INTERNAL_USER_VIEWER = "internal_user_viewer"

    user_id = models.CharField(max_length=255, unique=True, default=new_id)
    user_email = models.CharField(max_length=255, blank=True, db_index=True)
    user_alias = models.CharField(max_length=255, blank=True)
    user_role = models.CharField(max_length=32, choices=Role.choices, default=Role.INTERNAL_USER)
    allowed_models = models.JSONField(
        default=list, blank=True, help_text="Model aliases (API: `models`); empty: every model."
    )
    blocked = models.BooleanField(default=False)
    # The portal login of this user, when they have one (Django's auth user).
    account = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="internal_user"
    )

    class Meta:
        ordering = ["user_id"]

    def __str__(self) -> str:
        return self.user_email or self.user_id


class TeamMembership(models.Model):
    """A user in a team, with a role and optionally a budget of their own inside the team."""

    class Role(models.TextChoices):
        ADMIN = "admin"
        USER = "user"

    team = models.ForeignKey(Team, models.CASCADE, related_name="memberships")
    user = models.ForeignKey(InternalUser, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.USER)
    max_budget_in_team = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    spend = models.DecimalField(max_digits=20, decimal_places=10, default=0)
    budget_duration = models.CharField(max_length=16, blank=True)
    budget_reset_at = models.DateTimeField(null=True, blank=True)
    reserved = models.DecimalField(max_digits=20, decimal_places=10, default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="tenants_teammembership_once")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class VirtualKey(BudgetFields):
    """A key that callers present. Only its SHA-256 digest is stored; the key is shown once."""

    token = models.CharField(max_length=64, unique=True, editable=False)  # sha256 hex of the key
    key_name = models.CharField(max_length=16, editable=False)  # "sk-...abcd": safe to show and log
    key_alias = models.CharField(max_length=255, blank=True)
    team = models.ForeignKey(Team, models.CASCADE, null=True, blank=True, related_name="keys")
    user = models.ForeignKey(InternalUser, models.CASCADE, null=True, blank=True, related_name="keys")
    allowed_models = models.JSONField(
        default=list, blank=True, help_text="Model aliases (API: `models`); empty: the team's or user's."
    )
    aliases = models.JSONField(default=dict, blank=True, help_text="{asked-for alias: served alias}")
    permissions = models.JSONField(default=dict, blank=True)
    allowed_routes = models.JSONField(default=list, blank=True)
    blocked = models.BooleanField(default=False)
    expires = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=255, blank=True)
    updated_by = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["key_alias"], condition=~Q(key_alias=""), name="tenants_virtualkey_alias_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.key_alias or self.key_name


class Generation(models.Model):
    """A counter bumped on every change to keys, users or teams (used when there is no Redis).

    Each worker polls it at most every TOLLGATE_AUTH_CACHE_SECONDS and drops its cached key
    records when it moved, so a block or delete is seen everywhere within a second.
    """

    name = models.CharField(max_length=32, primary_key=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class AuditEntry(models.Model):
    """One change made through the admin or the management API: who, what, before and after.

    Written by tenants/audit.py only. Secrets never reach a row: key digests, provider keys and
    credentials are stored as "***" (keys appear only as their `sk-...abcd` hint).
    """

    class Via(models.TextChoices):
        ADMIN = "admin"
        API = "api"
        WEB = "web"  # the dashboard and portal pages
        SYSTEM = "system"  # commands, tasks, a shell

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=255, help_text="Admin username or API caller hint; never a key.")
    via = models.CharField(max_length=16, choices=Via.choices, default=Via.SYSTEM)
    action = models.CharField(max_length=32, db_index=True)  # create, update, delete, block, …
    object_type = models.CharField(max_length=64)  # key, team, user, membership, deployment, price
    object_id = models.CharField(max_length=255)
    object_repr = models.CharField(max_length=255, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["object_type", "object_id"], name="tenants_audit_object")]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.object_type} {self.object_id}"


#: The row that holds each kind of limit scope (`Scope.kind` in tenants/keys.py).
SCOPE_MODELS: dict[str, Any] = {
    "key": VirtualKey,
    "user": InternalUser,
    "team": Team,
    "member": TeamMembership,
}
