"""Management API: /model/new, /model/update, /model/delete, /model/info (LiteLLM-compatible).

A /model/new body is a config file's `model_list` entry, so it is checked by the same code
(configfile.check_entry, with the same messages) and written by the same code
(deployments.apply), secrets sealed; the row is marked as added by an admin. Rows loaded from
the config file are read-only here, as in LiteLLM: the file is where they change.

A model's id is its `model_info.id`, kept in `Deployment.config_id` whatever the source: the
config entry's id (or stable hash), or the uuid /model/new gave it. Rows added in the Django
admin have none until their first /model/update; their id is their primary key meanwhile.

No answer carries a secret, in clear or sealed: an `os.environ/NAME` reference is shown as
written, a literal secret as `sk-...abcd` (or `********` when it is short). The router notices
every change by itself (proxy/router.py), within TOLLGATE_DEPLOYMENT_CACHE_SECONDS.
"""

import logging
import re
import uuid
from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from proxy import configfile, crypto, deployments
from proxy.configfile import ConfigError, DeploymentEntry
from proxy.exceptions import InvalidRequest
from proxy.models import Deployment
from tenants import audit
from tenants.api.common import IsProxyAdmin, ManagementView

log = logging.getLogger(__name__)

MASK = "********"
# A name with one of these words holds a secret, as LiteLLM's SensitiveDataMasker judges it.
SECRET_WORDS = {
    "key",
    "secret",
    "token",
    "password",
    "auth",
    "authorization",
    "credential",
    "credentials",
    "access",
    "private",
}
NOT_SECRET = {"litellm_credential_name"}  # names a stored credential; LiteLLM shows it too
# model_info fields every answer computes; sent back in a body, they are ignored.
COMPUTED_INFO = {"db_model", "enabled"}


# --- the domain: add, change, remove, find ------------------------------------------------------


@transaction.atomic
def add(body: dict[str, Any]) -> Deployment:
    """Store a /model/new body as an admin deployment; raise InvalidRequest naming the field."""
    info = _mapping(body, "model_info")
    model_id = info.get("id")
    if model_id is None or model_id == "":
        model_id = str(uuid.uuid4())  # as LiteLLM does
    _check_id(model_id)
    info = {**_without_computed(info), "id": model_id}
    entry = _check({**body, "model_info": info}, route="/model/new")
    if find(model_id) is not None:
        raise _id_taken(model_id)
    row = Deployment(source=Deployment.Source.ADMIN, config_id=entry.config_id)
    deployments.apply(row, entry)
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:  # the same id added concurrently: proxy_deployment_one_row_per_admin_id
        raise _id_taken(model_id) from None
    row.refresh_from_db()
    audit.record("create", row, after=audit.snapshot(row))
    log.info("model added: %s (%s → %s)", model_id, row.model_name, row.litellm_model)
    return row


@transaction.atomic
def update(body: dict[str, Any]) -> Deployment:
    """Merge a /model/update body over the stored deployment it names by `model_info.id`.

    `litellm_params`, `model_info` and `model_name` are each applied when given; a null value
    is ignored (LiteLLM drops nulls too), and a masked secret sent back keeps the stored one.
    """
    info = _mapping(body, "model_info")
    model_id = info.get("id")
    if model_id is None or model_id == "":
        raise InvalidRequest(
            "model_info.id is required: the id of the model to update (GET /model/info lists them).",
            param="model_info.id",
            code="missing_required_parameter",
        )
    _check_id(model_id)
    row = find(model_id, lock=True)
    if row is None:
        raise InvalidRequest(
            f"model not found: no model has id '{model_id}'.", param="model_info.id", code="model_not_found"
        )
    if row.source == Deployment.Source.CONFIG:
        raise InvalidRequest(
            f"Can't edit model. Model in config: '{model_id}' comes from {Path(row.config_file).name}; "
            "edit the config file and load it again, or add the model with /model/new to edit it here.",
            param="model_info.id",
            code="model_in_config",
        )

    before = audit.snapshot(row)
    stored = stored_params(row)
    params = dict(stored)
    for name, value in _mapping(body, "litellm_params").items():
        # Unchanged, or the masked form /model/info showed: keep what is stored.
        if value is None or (name in stored and value == _shown(name, stored[name])):
            continue
        params[name] = value
    model_info = {**row.model_info, **{k: v for k, v in _without_computed(info).items() if v is not None}}
    model_name = body.get("model_name")
    entry = _check(
        {
            "model_name": row.model_name if model_name is None else model_name,
            "litellm_params": params,
            "model_info": {**model_info, "id": public_id(row)},
        },
        route="/model/update",
    )
    deployments.apply(row, entry)
    row.config_id = entry.config_id
    row.save()
    row.refresh_from_db()
    audit.record("update", row, before=before, after=audit.snapshot(row))
    log.info("model updated: %s (%s → %s)", model_id, row.model_name, row.litellm_model)
    return row


@transaction.atomic
def delete(model_id: Any) -> None:
    """Remove the admin deployment with this id; a config-file one stays (the file would bring it back)."""
    if model_id is None or model_id == "":
        raise InvalidRequest("id is required: the model_info.id of the model to delete.", param="id")
    _check_id(model_id, param="id")
    row = find(model_id, lock=True)
    if row is None:
        raise InvalidRequest(f"Model with id={model_id} not found in db", param="id", code="model_not_found")
    if row.source == Deployment.Source.CONFIG:
        raise InvalidRequest(
            f"Model with id={model_id} not found in db: it comes from the config file "
            f"{Path(row.config_file).name}; remove it there and load the file again.",
            param="id",
            code="model_in_config",
        )
    audit.record("delete", row, before=audit.snapshot(row))
    row.delete()
    log.info("model deleted: %s (%s)", model_id, row.model_name)


def find(model_id: str, *, lock: bool = False) -> Deployment | None:
    """The deployment with this id: its model_info.id, else the pk of a row that has none."""
    rows = Deployment.objects.select_for_update() if lock else Deployment.objects.all()
    found = rows.filter(config_id=model_id).order_by("source", "pk").first()  # "admin" < "config"
    if found is None and model_id.isascii() and model_id.isdigit() and len(model_id) < 19:
        found = rows.filter(config_id="", pk=int(model_id)).first()
    return found


def public_id(row: Deployment) -> str:
    return row.config_id or str(row.pk)


def stored_params(row: Deployment) -> dict[str, Any]:
    """The row's litellm_params as stored: set values only, secrets sealed or as references."""
    params: dict[str, Any] = {"model": row.litellm_model}
    for name in ("api_base", "api_version", "api_key", "mock_response"):
        if getattr(row, name):
            params[name] = getattr(row, name)
    params.update(row.credentials)
    for name in deployments.NUMBER_FIELDS:
        value = getattr(row, name)
        if value is not None:
            params[name] = float(value) if name in configfile.NUMBER_PARAMS else value
    params.update(row.params)
    return params


# --- what callers see -----------------------------------------------------------------------------


def shown(row: Deployment) -> dict[str, Any]:
    """One entry of /model/info: LiteLLM's deployment shape, secrets masked."""
    return {
        "model_name": row.model_name,
        "litellm_params": {name: _shown(name, value) for name, value in stored_params(row).items()},
        "model_info": {
            **row.model_info,
            "id": public_id(row),
            "db_model": row.source == Deployment.Source.ADMIN,
            "enabled": row.enabled,  # Tollgate's own: a disabled deployment is listed but not served
        },
    }


def shown_as_stored(row: Deployment) -> dict[str, Any]:
    """The answer to /model/new and /model/update: LiteLLM's DB-row shape, secrets masked."""
    return {
        "model_id": public_id(row),
        **shown(row),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def mask(stored: str) -> str:
    """What may be shown of a secret: a reference as written, else its ends at most."""
    try:
        plain = crypto.unseal(stored)
    except crypto.SecretUnavailable:
        return MASK
    if crypto.is_reference(plain):
        return plain
    return f"{plain[:3]}...{plain[-4:]}" if len(plain) >= 16 else MASK


def _shown(name: str, value: Any, secret: bool = False) -> Any:
    secret = secret or name in configfile.SECRET_PARAMS or _names_a_secret(name)
    if isinstance(value, dict):
        return {k: _shown(str(k), v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(name, v, secret) for v in value]
    return mask(value) if secret and isinstance(value, str) else value


def _names_a_secret(name: str) -> bool:
    return name not in NOT_SECRET and bool(SECRET_WORDS.intersection(re.split(r"[^a-z0-9]+", name.lower())))


# --- checking bodies ------------------------------------------------------------------------------


def _check(entry: dict[str, Any], *, route: str) -> DeploymentEntry:
    """Check a deployment as a config file's entry is checked, with the file's messages."""
    warnings: list[str] = []
    try:
        checked = configfile.check_entry(entry, where=route, warnings=warnings)
    except ConfigError as e:
        missing = e.param is not None and _at(entry, e.param) is None
        raise InvalidRequest(
            e.detail, param=e.param, code="missing_required_parameter" if missing else "invalid_value"
        ) from None
    for warning in warnings:
        log.warning("%s", warning)
    return checked


def _at(entry: dict[str, Any], dotted: str) -> Any:
    value: Any = entry
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _mapping(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"{name} must be a mapping (a JSON object).", param=name, code="invalid_type")
    return value


def _check_id(model_id: Any, param: str = "model_info.id") -> None:
    if not isinstance(model_id, str) or not model_id.strip() or len(model_id) > 255:
        raise InvalidRequest(
            f"{param} must be a non-empty string of at most 255 characters, got {model_id!r}.",
            param=param,
            code="invalid_type",
        )


def _without_computed(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k not in COMPUTED_INFO}


def _id_taken(model_id: str) -> InvalidRequest:
    return InvalidRequest(
        f"model_info.id '{model_id}' is already used by another model.", param="model_info.id", code="duplicate_id"
    )


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise InvalidRequest("The body must be a JSON object.", code="invalid_json")
    return request.data


# --- the routes -----------------------------------------------------------------------------------


class ModelNewView(ManagementView):
    """POST /model/new: add a deployment (proxy admin)."""

    permission_classes = [IsProxyAdmin]

    def post(self, request: Request) -> Response:
        return Response(shown_as_stored(add(_body(request))))


class ModelUpdateView(ManagementView):
    """POST /model/update: change a deployment added through the API or the admin (proxy admin)."""

    permission_classes = [IsProxyAdmin]

    def post(self, request: Request) -> Response:
        return Response(shown_as_stored(update(_body(request))))


class ModelDeleteView(ManagementView):
    """POST /model/delete: remove a deployment added through the API or the admin (proxy admin)."""

    permission_classes = [IsProxyAdmin]

    def post(self, request: Request) -> Response:
        model_id = _body(request).get("id")
        delete(model_id)
        return Response({"message": f"Model: {model_id} deleted successfully"})


class ModelInfoView(ManagementView):
    """GET /model/info (also under /v1): the deployments of the models this key may use."""

    def get(self, request: Request) -> Response:
        wanted = request.query_params.get("litellm_model_id")
        if wanted is None:
            rows = [d for d in Deployment.objects.all() if self.caller.may_use(d.model_name)]
            return Response({"data": [shown(d) for d in rows]})
        row = find(wanted) if wanted else None
        if row is None or not self.caller.may_use(row.model_name):  # another key's model: not found either
            raise InvalidRequest(
                f"Model id = {wanted} not found on litellm proxy",
                param="litellm_model_id",
                code="model_not_found",
            )
        return Response({"data": [shown(row)]})


urlpatterns = [
    path("model/new", ModelNewView.as_view()),
    path("model/update", ModelUpdateView.as_view()),
    path("model/delete", ModelDeleteView.as_view()),
    path("model/info", ModelInfoView.as_view()),
]
