"""The usage ledger, the editable price book and the daily billing table.

`UsageRecord` is the truth about money: one row per request that reached Tollgate, written on
the hot path (billing/ledger.py) before the answer is complete. Everything else — spend totals
on keys, users and teams, the daily table, the spend API — is derived from it by idempotent
Celery tasks (billing/rollup.py).

Rows name their tenants by their public ids (key hash, `team_id`, `user_id`), not by foreign
keys: a usage row must outlive the key, team or deployment it was made with.
"""

import enum

from django.db import models


class Counted(enum.IntFlag):
    """The tenant rows whose `spend` already includes a usage row's cost (`UsageRecord.counted_on`).

    Settling in the database adds the cost to the rows that carry a limit in the same transaction
    as the insert; the rollup adds it to the others, then marks the row ALL.
    """

    NONE = 0
    KEY = 1
    USER = 2
    TEAM = 4
    MEMBER = 8
    ALL = 15


class UsageRecord(models.Model):
    """One request: who made it, what it asked for, where it went, what it used and cost, how it ended."""

    request_id = models.CharField(
        max_length=64, db_index=True, help_text="The x-request-id; a caller may reuse its own"
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(db_index=True)
    latency_ms = models.FloatField(default=0)
    time_to_first_token_ms = models.FloatField(null=True, blank=True)
    endpoint = models.CharField(max_length=32, help_text="chat, completions, fim, embeddings")

    key_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the virtual key; empty: master key")
    key_id = models.BigIntegerField(null=True, blank=True, help_text="The key's row; its hash changes on regenerate")
    key_name = models.CharField(max_length=16, blank=True, help_text="sk-...abcd: safe to show")
    team_id = models.CharField(max_length=255, blank=True)
    user_id = models.CharField(max_length=255, blank=True)
    end_user = models.CharField(max_length=255, blank=True, help_text="The request's OpenAI `user` field")

    model = models.CharField(max_length=255, blank=True, help_text="The alias the caller asked for")
    model_group = models.CharField(max_length=255, blank=True, help_text="The group that answered: a fallback's")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Upstream calls made, retries included")
    deployment_id = models.BigIntegerField(null=True, blank=True)
    provider = models.CharField(max_length=64, blank=True)
    provider_model = models.CharField(max_length=255, blank=True)

    prompt_tokens = models.IntegerField(default=0)
    completion_tokens = models.IntegerField(default=0)
    total_tokens = models.IntegerField(default=0)
    tokens_estimated = models.BooleanField(default=False, help_text="Counted by Tollgate: the provider reported none")
    cost = models.DecimalField(max_digits=24, decimal_places=12, default=0)
    input_cost_per_token = models.DecimalField(max_digits=24, decimal_places=15, null=True, blank=True)
    output_cost_per_token = models.DecimalField(max_digits=24, decimal_places=15, null=True, blank=True)
    price_source = models.CharField(max_length=255, blank=True)

    stream = models.BooleanField(default=False)
    status = models.PositiveSmallIntegerField(help_text="HTTP status; 499 when the caller went away")
    error_type = models.CharField(max_length=64, blank=True)

    counted_on = models.PositiveSmallIntegerField(default=0, help_text="Counted flags")
    rolled_up = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["key_hash", "ended_at"]),
            models.Index(fields=["team_id", "ended_at"]),
            models.Index(fields=["user_id", "ended_at"]),
            # The rollup's queue: small, since rows leave it within seconds.
            models.Index(fields=["id"], condition=models.Q(rolled_up=False), name="billing_usage_pending"),
        ]

    def __str__(self) -> str:
        return self.request_id


class ModelPrice(models.Model):
    """An admin-set list price for one model from a date on; the newest one in effect wins.

    Shipped prices (billing/prices.py) apply where no row here does. A deployment's own
    `input_cost_per_token` / `output_cost_per_token` win over both.
    """

    price_list = models.CharField(
        max_length=32, help_text="mistral, bedrock, openai, anthropic (the provider/ prefix bills by one)"
    )
    model = models.CharField(max_length=255, help_text="The provider's model id, e.g. mistral-small-latest")
    input_cost_per_token = models.DecimalField(max_digits=24, decimal_places=15)
    output_cost_per_token = models.DecimalField(max_digits=24, decimal_places=15, default=0)
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    effective_from = models.DateTimeField(help_text="Calls that start at or after this time use this price")
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["price_list", "model", "effective_from"], name="billing_price_once"),
        ]
        ordering = ["price_list", "model", "-effective_from"]

    def __str__(self) -> str:
        return f"{self.price_list}/{self.model} from {self.effective_from:%Y-%m-%d %H:%M}"


class DailyUsage(models.Model):
    """Usage per UTC day, team, key, user, end user, model and provider: what reports read.

    Built only by the rollup (billing/rollup.py); an empty string stands for "none" in every
    dimension, so the unique constraint holds on every database.
    """

    day = models.DateField()
    team_id = models.CharField(max_length=255, blank=True)
    key_hash = models.CharField(max_length=64, blank=True)
    user_id = models.CharField(max_length=255, blank=True)
    end_user = models.CharField(max_length=255, blank=True)
    model = models.CharField(max_length=255, blank=True)
    provider = models.CharField(max_length=64, blank=True)
    requests = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    spend = models.DecimalField(max_digits=24, decimal_places=12, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "team_id", "key_hash", "user_id", "end_user", "model", "provider"],
                name="billing_daily_once",
            )
        ]
        indexes = [
            models.Index(fields=["team_id", "day"]),
            models.Index(fields=["key_hash", "day"]),
            models.Index(fields=["user_id", "day"]),
            models.Index(fields=["day"]),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.model or '-'}"
