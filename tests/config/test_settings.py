"""Settings: precedence, validation, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import SPEC, load_settings
from digest.errors import ConfigError
from tests.conftest import ROOT


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "digest.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_precedence_defaults_toml_env_flags(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, '[digest]\ntitle = "From TOML"\nsmtp_port = 2525\noutbox = "toml-box"\n'
    )
    defaults = load_settings(None, environ={})
    assert defaults.title == "The Digest"
    from_toml = load_settings(config, environ={})
    assert from_toml.title == "From TOML" and from_toml.smtp_port == 2525
    env = {"DIGEST_SMTP_PORT": "2626", "DIGEST_OUTBOX": "env-box"}
    from_env = load_settings(config, environ=env)
    assert from_env.smtp_port == 2626 and from_env.outbox == Path("env-box")
    from_flags = load_settings(config, environ=env, overrides={"outbox": "flag-box"})
    assert from_flags.outbox == Path("flag-box") and from_flags.title == "From TOML"


def test_env_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / "custom.env"
    env_file.write_text("DIGEST_FROM=Env File <env@example.org>\n")
    monkeypatch.delenv("DIGEST_FROM", raising=False)
    assert load_settings(None, env_file=env_file).from_addr == "Env File <env@example.org>"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DIGEST_SMTP_PORT": "abc"}, "DIGEST_SMTP_PORT"),
        ({"DIGEST_SMTP_PORT": "70000"}, "DIGEST_SMTP_PORT"),
        ({"DIGEST_SMTP_SECURITY": "tls"}, "DIGEST_SMTP_SECURITY"),
        ({"DIGEST_TIMEZONE": "Mars/Olympus"}, "DIGEST_TIMEZONE"),
    ],
)
def test_invalid_value_names_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(None, environ=env)


def test_unknown_toml_setting_is_an_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[digest]\ntitel = 'typo'\n")
    with pytest.raises(ConfigError, match="titel"):
        load_settings(config, environ={})


@pytest.mark.parametrize(
    ("typo", "closest"),
    [
        ("smtp_prot", "smtp_port"),
        ("SMTP_PORT", "smtp_port"),
        ("smtp-port", "smtp_port"),
        ("fetch_timout", "fetch_timeout"),
        ("databse", "database"),
    ],
)
def test_unknown_toml_setting_suggests_the_closest_name(
    tmp_path: Path, typo: str, closest: str
) -> None:
    config = write_config(tmp_path, f'[digest]\n"{typo}" = "1"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    message = str(caught.value)
    assert f"unknown setting {typo!r}" in message and "[digest]" in message
    assert message.endswith(f"did you mean {closest!r}?")
    # One name, not a list of every setting (nor of every similar one).
    assert sum(f"'{name}'" in message for name in SPEC) == 1


def test_unknown_flag_suggests_the_closest_name() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={}, overrides={"outbx": "box"})
    message = str(caught.value)
    assert "command-line option --outbx" in message
    assert message.endswith("did you mean 'outbox'?")


def test_unknown_setting_like_no_other_points_to_the_readme(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[digest]\nzzz = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    message = str(caught.value)
    assert "unknown setting 'zzz'" in message and "README" in message
    assert not any(f"'{name}'" in message for name in SPEC)


def test_sections_resolve_paths_relative_to_config(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '[[sections]]\nkey = "a"\nsources = ["articles", '
        '"https://example.org/feed.xml"]\nlimit = 3\n',
    )
    section = load_settings(config, environ={}).sections[0]
    assert section.sources == (str(tmp_path / "articles"), "https://example.org/feed.xml")
    assert section.limit == 3 and section.title == "a"


def test_password_never_in_repr_or_errors() -> None:
    settings = load_settings(
        None, environ={"DIGEST_SMTP_USER": "u", "DIGEST_SMTP_PASSWORD": "hunter2-secret"}
    )
    assert "hunter2-secret" not in repr(settings)
    assert settings.smtp_password == "hunter2-secret"


def test_user_without_password_is_an_error() -> None:
    with pytest.raises(ConfigError, match="DIGEST_SMTP_PASSWORD"):
        load_settings(None, environ={"DIGEST_SMTP_USER": "u"})


def test_missing_config_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_llm_api_key_is_a_secret() -> None:
    settings = load_settings(None, environ={"DIGEST_LLM_API_KEY": "sk-very-secret"})
    assert settings.llm_api_key == "sk-very-secret"
    assert "sk-very-secret" not in repr(settings)


def test_summary_word_budgets_must_not_be_negative() -> None:
    with pytest.raises(ConfigError, match="DIGEST_EDITION_WORDS"):
        load_settings(None, environ={"DIGEST_EDITION_WORDS": "-1"})


def test_every_setting_is_in_env_example_and_readme() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for key, (env, _parse) in SPEC.items():
        assert env in example, f"{env} missing from .env.example"
        assert env in readme and f"`{key}`" in readme, f"{key} missing from README.md"


def test_unknown_section_option_is_an_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[[sections]]\nkey = "news"\nsource = ["feeds/"]\n')
    with pytest.raises(ConfigError, match=r"section #1: unknown section option 'source'"):
        load_settings(config, environ={})


def test_a_login_in_clear_is_refused_except_to_this_machine() -> None:
    login = {"DIGEST_SMTP_USER": "u", "DIGEST_SMTP_PASSWORD": "hunter2-secret"}
    clear = {**login, "DIGEST_SMTP_SECURITY": "none"}
    with pytest.raises(
        ConfigError, match=r"would send the password to mail\.example\.org in clear"
    ):
        load_settings(None, environ={**clear, "DIGEST_SMTP_HOST": "mail.example.org"})
    for host in ("127.0.0.1", "localhost"):
        assert load_settings(None, environ={**clear, "DIGEST_SMTP_HOST": host}).smtp_user == "u"
    secure = {**login, "DIGEST_SMTP_HOST": "mail.example.org"}
    assert load_settings(None, environ=secure).smtp_security == "starttls"


def test_serve_defaults_to_a_port_test_smtp_servers_do_not_take() -> None:
    # 8025 is aiosmtpd's default: the very server operators test with.
    settings = load_settings(None, environ={})
    assert settings.serve_port == 8089 and settings.base_url == "http://127.0.0.1:8089"
