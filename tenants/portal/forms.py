"""The portal's forms: a new key, a new member, a role, and the password reset that opens the door.

Forms only validate the shape of what was typed; whether the change is allowed (team models,
team budget, who may do what) is decided by the domain functions the views call.
"""

from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.db import transaction

from tenants.models import InternalUser, Team, TeamMembership

DURATIONS = [("", "Never expires"), ("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days")]


class KeyForm(forms.Form):
    """A new team key. Models are offered from the team's list; none chosen means the team's."""

    key_alias = forms.CharField(max_length=255, required=False, label="Name")
    max_budget = forms.DecimalField(min_value=0, max_digits=20, decimal_places=6, required=False, label="Budget (USD)")
    models = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Models")
    duration = forms.ChoiceField(choices=DURATIONS, required=False, label="Expires")

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        models = self.fields["models"]
        assert isinstance(models, forms.MultipleChoiceField)
        models.choices = [(m, m) for m in team.allowed_models or []]
        if not team.allowed_models:
            del self.fields["models"]

    def key_fields(self) -> dict[str, Any]:
        """The cleaned values as keymanagement.generate takes them, leaving out what was left empty."""
        data = self.cleaned_data
        fields: dict[str, Any] = {}
        if data.get("key_alias"):
            fields["key_alias"] = data["key_alias"]
        if data.get("max_budget") is not None:
            fields["max_budget"] = data["max_budget"]
        if data.get("models"):
            fields["allowed_models"] = list(data["models"])
        if data.get("duration"):
            fields["duration"] = data["duration"]
        return fields


class MemberAddForm(forms.Form):
    user_email = forms.EmailField(label="Email of an existing user")
    role = forms.ChoiceField(choices=TeamMembership.Role.choices, initial=TeamMembership.Role.USER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=TeamMembership.Role.choices)


class PortalPasswordResetForm(PasswordResetForm):
    """Django's reset form, which also lets a team member without a login set their first password.

    An internal user who belongs to a team and has no login gets one (username = their email,
    no usable password) linked to them, then the usual reset email: only whoever reads that
    mailbox can set the password. Unknown addresses get no email and the same answer page.
    """

    def get_users(self, email: str) -> Iterator[Any]:
        _create_first_login(email)
        accounts = get_user_model()._default_manager.filter(email__iexact=email, is_active=True)
        # Unlike Django's form, accounts without a usable password qualify: new logins have none.
        return (account for account in accounts if account.email.casefold() == email.casefold())


@transaction.atomic
def _create_first_login(email: str) -> None:
    people = InternalUser.objects.filter(user_email__iexact=email, account__isnull=True, blocked=False)
    person = people.filter(memberships__isnull=False).order_by("pk").first()
    if person is None:
        return
    accounts = get_user_model()._default_manager
    if accounts.filter(username__iexact=person.user_email).exists():
        return  # a login of that name exists: an admin links it by hand
    account = accounts.create_user(username=person.user_email.lower(), email=person.user_email)  # no password yet
    person.account = account
    person.save(update_fields=["account", "updated_at"])
