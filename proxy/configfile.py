"""Read a LiteLLM `config.yaml` into checked, typed entries, without touching the database.

The file is accepted as LiteLLM users write it. A value that cannot work (a missing model, a
number that is not one) is a ConfigError naming the file, the entry and the field; a key that
Tollgate keeps but does not act on yet is a warning, never fatal, so a file written for LiteLLM
loads unchanged.
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from proxy import policy, providers

TOP_LEVEL_ACTED_ON = {
    "model_list",
    "general_settings",
    "litellm_settings",
    "router_settings",
    "environment_variables",
    "include",
}
GENERAL_ACTED_ON = {"master_key", "background_health_checks", "health_check_interval"}
LITELLM_ACTED_ON = {"drop_params", "request_timeout"} | policy.LITELLM_KEYS
ROUTER_ACTED_ON: set[str] = set(policy.ROUTER_KEYS)

# litellm_params Tollgate reads, with the type each must have. Secrets are listed apart.
NUMBER_PARAMS = {"timeout", "stream_timeout", "weight", "input_cost_per_token", "output_cost_per_token"}
INT_PARAMS = {"rpm", "tpm", "order", "max_retries"}
STRING_PARAMS = {
    "model",
    "api_base",
    "api_version",
    "mock_response",
    "aws_region_name",
    "aws_role_name",
    "aws_session_name",
    "aws_profile_name",
    "aws_bedrock_runtime_endpoint",
    "aws_sts_endpoint",
    "vertex_project",
    "vertex_location",
    "vertex_ai_project",  # LiteLLM reads these spellings too
    "vertex_ai_location",
    "tenant_id",
    "client_id",
    "azure_authority_host",
    "azure_scope",
}
SECRET_PARAMS = {
    "api_key",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "azure_ad_token",
    "client_secret",
    "vertex_credentials",
}
KNOWN_PARAMS = NUMBER_PARAMS | INT_PARAMS | STRING_PARAMS | SECRET_PARAMS
# Those with a column of their own on Deployment; the rest travel in Deployment.params.
COLUMN_PARAMS = NUMBER_PARAMS | INT_PARAMS | SECRET_PARAMS | {"model", "api_base", "api_version", "mock_response"}


class ConfigError(Exception):
    """The config file cannot be used; the message names the file, entry and field.

    An entry's error also keeps the field (`param`) and the message without the place
    (`detail`), so /model/new can report the same check without a file to name.
    """

    def __init__(self, message: str, *, where: str = "", param: str | None = None) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.detail = message
        self.param = param


@dataclass(frozen=True)
class DeploymentEntry:
    """One `model_list` entry, checked. `params` keeps every other litellm_param as given."""

    config_id: str
    model_name: str
    model: str
    api_base: str = ""
    api_version: str = ""
    api_key: str = ""
    credentials: dict[str, str] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)
    mock_response: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    model_info: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConfigFile:
    path: str
    sha256: str
    deployments: list[DeploymentEntry]
    general_settings: dict[str, Any]
    litellm_settings: dict[str, Any]
    router_settings: dict[str, Any]
    environment_variables: dict[str, str]
    warnings: list[str]

    @property
    def master_key(self) -> str:
        return str(self.general_settings.get("master_key") or "")


def read(path: str | Path) -> ConfigFile:
    """Parse and check the file at `path`; raise ConfigError on anything that cannot work."""
    path = Path(path)
    raw = _load_yaml(path)
    where = path.name
    warnings: list[str] = []
    for key in raw:
        if key not in TOP_LEVEL_ACTED_ON:
            warnings.append(f"{where}: top-level key '{key}' is kept but not acted on")

    # Each entry with where it was written, so a message names the included file and its index.
    entries_raw = [(f"{where}: model_list[{i}]", e) for i, e in enumerate(_section(raw, "model_list", list, where))]
    for included in _section(raw, "include", list, where):
        other = path.parent / str(included)
        entries_raw.extend(
            (f"{other.name}: model_list[{i}]", e)
            for i, e in enumerate(_section(_load_yaml(other), "model_list", list, other.name))
        )

    general = _section(raw, "general_settings", dict, where)
    litellm = _section(raw, "litellm_settings", dict, where)
    router = _section(raw, "router_settings", dict, where)
    env_vars = _section(raw, "environment_variables", dict, where)
    warnings += _unacted(where, "general_settings", general, GENERAL_ACTED_ON)
    warnings += _unacted(where, "litellm_settings", litellm, LITELLM_ACTED_ON)
    warnings += _unacted(where, "router_settings", router, ROUTER_ACTED_ON)
    if general.get("master_key") is not None and not isinstance(general["master_key"], str):
        raise ConfigError(f"{where}: general_settings.master_key must be a string")

    deployments = []
    seen: dict[str, int] = {}
    ids: set[str] = set()
    for entry_where, entry in entries_raw:
        deployment = _entry(entry, entry_where, warnings, seen)
        if deployment.config_id in ids:
            raise ConfigError(
                f'{entry_where} (model_name "{deployment.model_name}"): model_info.id '
                f"'{deployment.config_id}' is already used by another entry"
            )
        ids.add(deployment.config_id)
        deployments.append(deployment)

    return ConfigFile(
        path=str(path.resolve()),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        deployments=deployments,
        general_settings=general,
        litellm_settings=litellm,
        router_settings=router,
        environment_variables={str(k): "" if v is None else str(v) for k, v in env_vars.items()},
        warnings=warnings,
    )


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{path.name}: not valid YAML{line}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: the top level must be a mapping (model_list:, general_settings:, ...)")
    return data


def _section(raw: dict[str, Any], name: str, kind: type, where: str) -> Any:
    value = raw.get(name)
    if value is None:
        return kind()
    if not isinstance(value, kind):
        expected = "a list" if kind is list else "a mapping"
        raise ConfigError(f"{where}: {name} must be {expected}, got {_type(value)}")
    return value


def _unacted(where: str, section: str, values: dict[str, Any], acted_on: set[str]) -> list[str]:
    return [f"{where}: {section}.{key} is kept but not acted on" for key in values if key not in acted_on]


def check_entry(entry: Any, *, where: str, warnings: list[str]) -> DeploymentEntry:
    """Check one `model_list` entry as a config file would (also a /model/new body).

    Raise ConfigError naming the field; append what is kept but not acted on to `warnings`.
    Without `model_info.id`, the id is a hash of the entry, stable across reloads.
    """
    return _entry(entry, where, warnings, {})


def _entry(entry: Any, where: str, warnings: list[str], seen: dict[str, int]) -> DeploymentEntry:
    if not isinstance(entry, dict):
        raise ConfigError(f"each model_list entry must be a mapping, got {_type(entry)}", where=where)
    name = entry.get("model_name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("model_name is required and must be a non-empty string", where=where, param="model_name")
    where = f'{where} (model_name "{name}")'
    params = entry.get("litellm_params")
    if not isinstance(params, dict):
        raise ConfigError("litellm_params is required and must be a mapping", where=where, param="litellm_params")
    info = entry.get("model_info") or {}
    if not isinstance(info, dict):
        raise ConfigError(f"model_info must be a mapping, got {_type(info)}", where=where, param="model_info")
    for key in entry:
        if key not in {"model_name", "litellm_params", "model_info"}:
            warnings.append(f"{where}: key '{key}' is kept but not acted on")

    model = params.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(
            "litellm_params.model is required (provider/model-id, e.g. mistral/mistral-small-latest)",
            where=where,
            param="litellm_params.model",
        )
    _check_types(params, where)
    provider = model.split("/", 1)[0] if "/" in model else ""
    if not params.get("mock_response"):
        if not provider:
            raise ConfigError(
                f"litellm_params.model '{model}' needs a provider prefix, e.g. mistral/{model}",
                where=where,
                param="litellm_params.model",
            )
        if not providers.is_supported(provider):
            warnings.append(f"{where}: provider '{provider}' is not supported yet; calls to it will fail")
    api_base = params.get("api_base") or ""
    if api_base and not api_base.startswith(("http://", "https://", "os.environ/")):
        raise ConfigError(
            f"litellm_params.api_base must be an http(s) URL, got '{api_base}'",
            where=where,
            param="litellm_params.api_base",
        )
    for key in params:
        if key not in KNOWN_PARAMS:
            warnings.append(f"{where}: litellm_params.{key} is kept but not acted on")

    config_id = str(info.get("id") or _stable_id(name, model, api_base, seen))
    return DeploymentEntry(
        config_id=config_id,
        model_name=name,
        model=model,
        api_base=api_base,
        api_version=params.get("api_version") or "",
        api_key=params.get("api_key") or "",
        credentials={k: _text(params[k]) for k in SECRET_PARAMS - {"api_key"} if params.get(k)},
        numbers={k: params[k] for k in NUMBER_PARAMS | INT_PARAMS if params.get(k) is not None},
        mock_response=params.get("mock_response") or "",
        params={k: v for k, v in params.items() if k not in COLUMN_PARAMS},
        model_info=info,
    )


def _check_types(params: dict[str, Any], where: str) -> None:
    for key, value in params.items():
        if value is None:
            continue
        param = f"litellm_params.{key}"
        if key in INT_PARAMS and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ConfigError(f"{param} must be a whole number ≥ 0, got {value!r}", where=where, param=param)
        if key in NUMBER_PARAMS and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise ConfigError(f"{param} must be a number ≥ 0, got {value!r}", where=where, param=param)
        if key in STRING_PARAMS | SECRET_PARAMS and not isinstance(value, str):
            if key == "vertex_credentials" and isinstance(value, dict):
                continue
            raise ConfigError(f"{param} must be a string, got {_type(value)}", where=where, param=param)


def _stable_id(name: str, model: str, api_base: str, seen: dict[str, int]) -> str:
    """Identify an entry across reloads so admin changes (enabled) survive an edited api_key."""
    base = f"{name}\0{model}\0{api_base}"
    seen[base] = seen.get(base, 0) + 1
    return hashlib.sha256(f"{base}\0{seen[base]}".encode()).hexdigest()[:24]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _type(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "true/false",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)
