"""Model fields that keep provider secrets sealed in the database (see proxy/crypto.py)."""

from typing import Any

from django.db import models

from proxy import crypto


class SealedField(models.TextField):
    """Text stored encrypted, unless it is an `os.environ/NAME` reference.

    The attribute holds the stored form (sealed or a reference); plain text assigned to it is
    sealed on save. Reading the secret is always explicit: `crypto.resolve(obj.field)`.
    """

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return crypto.seal(value) if value else value


class SealedJSONField(models.JSONField):
    """A {name: secret} mapping whose values are sealed like SealedField's."""

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            value = {name: crypto.seal(str(secret)) for name, secret in value.items()}
        return super().get_prep_value(value)
