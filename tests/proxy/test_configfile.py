"""Reading a LiteLLM config.yaml: accepted as written, precise errors, warnings for what is kept."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from proxy import configfile
from proxy.configfile import ConfigError

EXAMPLES = Path(settings.BASE_DIR) / "examples"
GOOD_ENTRY = """\
  - model_name: ok
    litellm_params:
      model: mistral/mistral-small-latest
"""


def write(directory: Path, text: str, name: str = "config.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def second_entry(litellm_params: str = "model: mistral/mistral-small-latest", extra: str = "") -> str:
    """A model_list whose entry [1] is named "x": the entry the error messages must name."""
    return f"model_list:\n{GOOD_ENTRY}  - model_name: x\n    litellm_params: {{{litellm_params}}}\n{extra}"


def test_litellm_example_loads_verbatim():
    config = configfile.read(EXAMPLES / "litellm_config.yaml")

    assert [(d.model_name, d.model) for d in config.deployments] == [
        ("mistral-small-latest", "mistral/mistral-small-latest"),
        ("mistral-nemo", "mistral/open-mistral-nemo"),
    ]
    assert [d.api_key for d in config.deployments] == ["os.environ/MISTRAL_API_KEY"] * 2
    assert config.master_key == "sk-1234"
    assert config.path == str((EXAMPLES / "litellm_config.yaml").resolve())
    assert len(config.sha256) == 64
    assert config.warnings == []


def test_quickstart_example_loads_with_mock_answers():
    config = configfile.read(EXAMPLES / "quickstart.yaml")

    assert [d.model_name for d in config.deployments] == ["quickstart-chat", "quickstart-code", "quickstart-embed"]
    assert all(d.mock_response for d in config.deployments)
    assert all(d.api_key == "" for d in config.deployments)
    assert config.deployments[2].model_info == {"mode": "embedding"}
    assert config.master_key.startswith("sk-tollgate-quickstart-")
    assert config.warnings == []


def test_all_documented_params_land_in_their_places(tmp_path):
    path = write(
        tmp_path,
        """\
        model_list:
          - model_name: big
            litellm_params:
              model: openai/gpt-4o
              api_base: http://127.0.0.1:9000/v1
              api_version: "2024-06-01"
              api_key: sk-literal
              aws_access_key_id: os.environ/AWS_KEY
              rpm: 10
              tpm: 1000
              timeout: 2.5
              weight: 2
              order: 1
              input_cost_per_token: 0.000001
              aws_region_name: eu-west-3
        environment_variables:
          AWS_KEY: from-file
          EMPTY:
    """,
    )

    entry = configfile.read(path).deployments[0]

    assert entry.api_base == "http://127.0.0.1:9000/v1"
    assert (entry.api_version, entry.api_key) == ("2024-06-01", "sk-literal")
    assert entry.credentials == {"aws_access_key_id": "os.environ/AWS_KEY"}
    assert entry.numbers == {
        "rpm": 10,
        "tpm": 1000,
        "timeout": 2.5,
        "weight": 2,
        "order": 1,
        "input_cost_per_token": 0.000001,
    }
    assert entry.params == {"aws_region_name": "eu-west-3"}
    assert configfile.read(path).environment_variables == {"AWS_KEY": "from-file", "EMPTY": ""}


def test_empty_file_is_an_empty_config(tmp_path):
    config = configfile.read(write(tmp_path, ""))

    assert (config.deployments, config.master_key, config.warnings) == ([], "", [])


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(ConfigError) as e:
        configfile.read(tmp_path / "absent.yaml")

    assert str(e.value) == f"{tmp_path / 'absent.yaml'}: no such config file"


BAD_CONFIGS = [
    pytest.param(
        "model_list:\n  - model_name: ok\n    litellm_params:\n      model: mistral/x\n     bad: indent\n",
        ["bad.yaml: not valid YAML at line 5"],
        id="invalid-yaml-with-line",
    ),
    pytest.param(
        "- model_list\n- general_settings\n", ["bad.yaml: the top level must be a mapping"], id="top-level-not-mapping"
    ),
    pytest.param("just a string\n", ["bad.yaml: the top level must be a mapping"], id="top-level-scalar"),
    pytest.param(
        "model_list:\n  model_name: x\n",
        ["bad.yaml: model_list must be a list, got a mapping"],
        id="model-list-not-list",
    ),
    pytest.param(
        f"model_list:\n{GOOD_ENTRY}  - mistral-small\n",
        ["bad.yaml: model_list[1]: each model_list entry must be a mapping, got a string"],
        id="entry-not-mapping",
    ),
    pytest.param(
        f"model_list:\n{GOOD_ENTRY}  - litellm_params: {{model: mistral/x}}\n",
        ["bad.yaml: model_list[1]: model_name is required"],
        id="missing-model-name",
    ),
    pytest.param(
        f"model_list:\n{GOOD_ENTRY}  - model_name: '  '\n    litellm_params: {{model: mistral/x}}\n",
        ["bad.yaml: model_list[1]: model_name is required and must be a non-empty string"],
        id="empty-model-name",
    ),
    pytest.param(
        f"model_list:\n{GOOD_ENTRY}  - model_name: x\n",
        ['bad.yaml: model_list[1] (model_name "x"): litellm_params is required'],
        id="missing-litellm-params",
    ),
    pytest.param(
        f"model_list:\n{GOOD_ENTRY}  - model_name: x\n    litellm_params: [mistral/x]\n",
        ['bad.yaml: model_list[1] (model_name "x"): litellm_params is required and must be a mapping'],
        id="litellm-params-not-mapping",
    ),
    pytest.param(
        second_entry("api_key: sk-1"),
        ['bad.yaml: model_list[1] (model_name "x"): litellm_params.model is required'],
        id="missing-model",
    ),
    pytest.param(
        second_entry("model: mistral-small-latest"),
        [
            "bad.yaml: model_list[1] (model_name \"x\"): litellm_params.model 'mistral-small-latest' "
            "needs a provider prefix, e.g. mistral/mistral-small-latest"
        ],
        id="model-without-provider",
    ),
    pytest.param(
        second_entry("model: mistral/x, rpm: ten"),
        ['bad.yaml: model_list[1] (model_name "x"): litellm_params.rpm must be a whole number', "'ten'"],
        id="rpm-not-integer",
    ),
    pytest.param(
        second_entry("model: mistral/x, rpm: 1.5"),
        ['model_list[1] (model_name "x"): litellm_params.rpm must be a whole number'],
        id="rpm-fraction",
    ),
    pytest.param(
        second_entry("model: mistral/x, rpm: true"),
        ['model_list[1] (model_name "x"): litellm_params.rpm must be a whole number'],
        id="rpm-boolean",
    ),
    pytest.param(
        second_entry("model: mistral/x, rpm: -1"),
        ['bad.yaml: model_list[1] (model_name "x"): litellm_params.rpm must be a whole number ≥ 0, got -1'],
        id="rpm-negative",
    ),
    pytest.param(
        second_entry("model: mistral/x, timeout: 30s"),
        ['bad.yaml: model_list[1] (model_name "x"): litellm_params.timeout must be a number', "'30s'"],
        id="timeout-not-number",
    ),
    pytest.param(
        second_entry("model: mistral/x, api_base: 'ftp://example.com'"),
        [
            'bad.yaml: model_list[1] (model_name "x"): litellm_params.api_base must be an http(s) URL',
            "'ftp://example.com'",
        ],
        id="api-base-not-http",
    ),
    pytest.param(
        second_entry("model: mistral/x, api_base: 'localhost:8000'"),
        ['model_list[1] (model_name "x"): litellm_params.api_base must be an http(s) URL'],
        id="api-base-without-scheme",
    ),
    pytest.param(
        second_entry("model: mistral/x, api_key: 12345"),
        ['bad.yaml: model_list[1] (model_name "x"): litellm_params.api_key must be a string'],
        id="api-key-not-string",
    ),
    pytest.param(
        second_entry(extra="    model_info: [embedding]\n"),
        ['bad.yaml: model_list[1] (model_name "x"): model_info must be a mapping, got a list'],
        id="model-info-not-mapping",
    ),
    pytest.param(
        "general_settings:\n  master_key: 1234\n",
        ["bad.yaml: general_settings.master_key must be a string"],
        id="master-key-not-string",
    ),
    pytest.param(
        "general_settings:\n  - master_key: sk-1\n",
        ["bad.yaml: general_settings must be a mapping, got a list"],
        id="general-settings-not-mapping",
    ),
    pytest.param(
        "environment_variables: [A=1]\n",
        ["bad.yaml: environment_variables must be a mapping, got a list"],
        id="env-vars-not-mapping",
    ),
    pytest.param(
        f"model_list:\n{GOOD_ENTRY}  - model_name: x\n    litellm_params: {{model: mistral/x}}\n"
        "    model_info: {id: same}\n  - model_name: y\n    litellm_params: {model: mistral/y}\n"
        "    model_info: {id: same}\n",
        ["bad.yaml: model_list[2] (model_name \"y\"): model_info.id 'same' is already used"],
        id="duplicate-model-info-id",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CONFIGS)
def test_bad_config_names_the_file_entry_and_field(tmp_path, text, expected):
    with pytest.raises(ConfigError) as e:
        configfile.read(write(tmp_path, text, "bad.yaml"))

    for fragment in expected:
        assert fragment in str(e.value)


def test_bad_entry_in_an_included_file_names_that_file_and_its_index(tmp_path):
    write(tmp_path, "model_list:\n  - model_name: b\n    litellm_params: {model: mistral/y, rpm: -1}\n", "more.yaml")
    main = write(tmp_path, f"model_list:\n{GOOD_ENTRY}include:\n  - more.yaml\n")

    with pytest.raises(ConfigError) as e:
        configfile.read(main)

    assert str(e.value).startswith('more.yaml: model_list[0] (model_name "b"): litellm_params.rpm')


def test_missing_included_file_is_an_error(tmp_path):
    main = write(tmp_path, f"model_list:\n{GOOD_ENTRY}include:\n  - absent.yaml\n")

    with pytest.raises(ConfigError, match=r"absent\.yaml: no such config file"):
        configfile.read(main)


def test_include_merges_the_other_files_model_list(tmp_path):
    write(
        tmp_path,
        """\
        model_list:
          - model_name: nemo
            litellm_params:
              model: mistral/open-mistral-nemo
    """,
        "more.yaml",
    )
    main = write(tmp_path, f"model_list:\n{GOOD_ENTRY}include:\n  - more.yaml\n")

    config = configfile.read(main)

    assert [(d.model_name, d.model) for d in config.deployments] == [
        ("ok", "mistral/mistral-small-latest"),
        ("nemo", "mistral/open-mistral-nemo"),
    ]
    assert config.warnings == []


WARNINGS = [
    pytest.param(
        f"model_list:\n{GOOD_ENTRY}callbacks: [langfuse]\n",
        "cfg.yaml: top-level key 'callbacks' is kept but not acted on",
        id="unknown-top-level-key",
    ),
    pytest.param(
        second_entry("model: mistral/x, seed: 7"),
        'cfg.yaml: model_list[1] (model_name "x"): litellm_params.seed is kept but not acted on',
        id="unknown-litellm-param",
    ),
    pytest.param(
        f"model_list:\n{GOOD_ENTRY}router_settings:\n  enable_pre_call_checks: true\n",
        "cfg.yaml: router_settings.enable_pre_call_checks is kept but not acted on",
        id="router-settings-key",
    ),
    pytest.param(
        f"model_list:\n{GOOD_ENTRY}litellm_settings:\n  success_callback: [langfuse]\n",
        "cfg.yaml: litellm_settings.success_callback is kept but not acted on",
        id="litellm-settings-key",
    ),
    pytest.param(
        f"model_list:\n{GOOD_ENTRY}general_settings:\n  database_url: postgres://x\n",
        "cfg.yaml: general_settings.database_url is kept but not acted on",
        id="general-settings-key",
    ),
    pytest.param(
        second_entry(extra="    tpm_limit: 5\n"),
        "cfg.yaml: model_list[1] (model_name \"x\"): key 'tpm_limit' is kept but not acted on",
        id="unknown-entry-key",
    ),
    pytest.param(
        second_entry("model: huggingface/HuggingFaceH4/zephyr-7b-beta"),
        "cfg.yaml: model_list[1] (model_name \"x\"): provider 'huggingface' is not supported yet",
        id="unsupported-provider",
    ),
]


@pytest.mark.parametrize(("text", "warning"), WARNINGS)
def test_kept_but_unused_settings_warn_and_still_load(tmp_path, text, warning):
    config = configfile.read(write(tmp_path, text, "cfg.yaml"))

    assert [w for w in config.warnings if w.startswith(warning)] != [], config.warnings
    assert config.deployments[0].model_name == "ok"


def test_unknown_values_are_kept_as_given(tmp_path):
    config = configfile.read(
        write(
            tmp_path, second_entry("model: mistral/x, seed: 7") + "router_settings:\n  routing_strategy: least-busy\n"
        )
    )

    assert config.deployments[1].params == {"seed": 7}
    assert config.router_settings == {"routing_strategy": "least-busy"}


def test_mock_response_needs_no_provider_and_gives_no_warning(tmp_path):
    config = configfile.read(write(tmp_path, second_entry("model: anything, mock_response: hi")))

    assert config.deployments[1].mock_response == "hi"
    assert config.warnings == []


def test_same_entry_read_twice_gets_the_same_config_id(tmp_path):
    path = write(tmp_path, second_entry())
    first = [d.config_id for d in configfile.read(path).deployments]

    assert [d.config_id for d in configfile.read(path).deployments] == first


def test_config_id_survives_an_edited_api_key_and_an_entry_added_before(tmp_path):
    before = configfile.read(write(tmp_path, second_entry("model: mistral/x, api_key: sk-old")))
    added_first = "model_list:\n  - model_name: new\n    litellm_params: {model: mistral/n}\n"
    after = configfile.read(
        write(tmp_path, added_first + second_entry("model: mistral/x, api_key: sk-new").removeprefix("model_list:\n"))
    )

    assert after.deployments[2].config_id == before.deployments[1].config_id


def test_identical_entries_get_different_config_ids(tmp_path):
    config = configfile.read(write(tmp_path, f"model_list:\n{GOOD_ENTRY}{GOOD_ENTRY}"))

    assert len({d.config_id for d in config.deployments}) == 2


def test_model_info_id_is_the_config_id(tmp_path):
    config = configfile.read(write(tmp_path, second_entry(extra="    model_info: {id: my-deployment}\n")))

    assert config.deployments[1].config_id == "my-deployment"


def test_loadconfig_command_raises_command_error_with_the_message(tmp_path):
    bad = write(tmp_path, second_entry("model: mistral/x, rpm: -1"), "bad.yaml")

    with pytest.raises(CommandError) as e:
        call_command("loadconfig", str(bad))

    assert str(e.value).startswith('Bad config: bad.yaml: model_list[1] (model_name "x"): litellm_params.rpm must')


def manage(*args: str, database: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": f"sqlite:///{database}"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_loadconfig_exits_non_zero_with_the_message_on_stderr(tmp_path):
    database = tmp_path / "x.db"
    assert manage("migrate", "--verbosity=0", database=database).returncode == 0
    bad = write(tmp_path, second_entry("model: mistral/x, timeout: soon"), "bad.yaml")
    good = write(tmp_path, second_entry("model: mistral/x, seed: 1"), "good.yaml")

    failed = manage("loadconfig", str(bad), database=database)
    loaded = manage("loadconfig", str(good), database=database)

    assert failed.returncode == 1
    assert 'bad.yaml: model_list[1] (model_name "x"): litellm_params.timeout must be a number' in failed.stderr
    assert "Traceback" not in failed.stderr
    assert failed.stdout == ""
    assert loaded.returncode == 0, loaded.stderr
    assert "2 deployments (2 new, 0 updated, 0 removed)" in loaded.stdout
    assert "warning: good.yaml: model_list[1]" in loaded.stderr
