"""The exporter's settings: file, environment and flags, and errors that name the key."""
from __future__ import annotations

import pytest

from hftel_exporter.command import main as exporter_main
from hftel_exporter.config import SETTINGS, ConfigError, load_config

EXAMPLE = "exporter/systemd/exporter.toml"


def write(tmp_path, text):
    path = tmp_path / "exporter.toml"
    path.write_text(text)
    return str(path)


def test_defaults_listen_on_loopback_only():
    assert load_config(None, environ={}).web.listen_address.startswith("127.0.0.1:")


def test_default_segments_follow_hftel_shm_dir():
    assert load_config(None, environ={"HFTEL_SHM_DIR": "/run/hft/"}).segments.paths == ["/run/hft/hftel-*"]


def test_file_values_are_read_by_section(tmp_path):
    config = load_config(write(tmp_path, '[web]\nlisten_address = "127.0.0.1:9999"\n[segments]\nscan_interval = 2\n'),
                         environ={})
    assert config.web.listen_address == "127.0.0.1:9999"
    assert config.segments.scan_interval == 2.0


def test_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, '[log]\nlevel = "debug"\n')
    assert load_config(path, environ={"HFTEL_LOG_LEVEL": "error"}).log.level == "error"


def test_flags_override_the_environment():
    config = load_config(None, environ={"HFTEL_LOG_LEVEL": "error"}, flags={"log.level": "warning"})
    assert config.log.level == "warning"


def test_list_settings_split_on_commas_in_the_environment():
    config = load_config(None, environ={"HFTEL_SEGMENTS_PATHS": "/a/hftel-x, /b/hftel-*"})
    assert config.segments.paths == ["/a/hftel-x", "/b/hftel-*"]


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key web\.listen_adress \(did you mean web\.listen_address\?\)"):
        load_config(write(tmp_path, '[web]\nlisten_adress = "127.0.0.1:1"\n'), environ={})


def test_unknown_section_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown section sinks"):
        load_config(write(tmp_path, "[sinks]\nx = 1\n"), environ={})


def test_wrong_type_is_named_with_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"segments\.scan_interval: expected a number, got str"):
        load_config(write(tmp_path, '[segments]\nscan_interval = "fast"\n'), environ={})


def test_bad_value_from_the_environment_names_the_variable():
    with pytest.raises(ConfigError, match=r"HFTEL_SEGMENTS_STALE_AFTER \(segments\.stale_after\)"):
        load_config(None, environ={"HFTEL_SEGMENTS_STALE_AFTER": "soon"})


def test_value_out_of_range_is_named():
    with pytest.raises(ConfigError, match=r"segments\.scan_interval: must be > 0"):
        load_config(None, environ={"HFTEL_SEGMENTS_SCAN_INTERVAL": "0"})


def test_choice_settings_list_the_choices():
    with pytest.raises(ConfigError, match=r"log\.level: expected one of debug, info, warning, error"):
        load_config(None, environ={"HFTEL_LOG_LEVEL": "loud"})


def test_malformed_listen_address_is_named():
    with pytest.raises(ConfigError, match=r"web\.listen_address"):
        load_config(None, environ={"HFTEL_WEB_LISTEN_ADDRESS": "localhost"})


def test_invalid_toml_names_the_file(tmp_path):
    path = write(tmp_path, "[web\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(path, environ={})


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(str(tmp_path / "absent.toml"), environ={})


def test_every_setting_has_a_flag_and_a_variable():
    for setting in SETTINGS:
        assert setting.flag == f"--{setting.section}.{setting.name.replace('_', '-')}"
        assert setting.env == f"HFTEL_{setting.section.upper()}_{setting.name.upper()}"


def test_shipped_example_config_sets_every_key():
    import tomllib

    with open(EXAMPLE, "rb") as file:
        document = tomllib.load(file)
    assert {f"{section}.{name}" for section, table in document.items() for name in table} == {
        setting.key for setting in SETTINGS}
    load_config(EXAMPLE, environ={})


def test_check_config_accepts_the_example_and_prints_the_settings(capsys):
    assert exporter_main(["--config", EXAMPLE, "--check-config"]) == 0
    assert 'listen_address = "127.0.0.1:9477"' in capsys.readouterr().out


def test_check_config_fails_with_the_key_named(tmp_path, capsys):
    assert exporter_main(["--config", write(tmp_path, "[web]\nport = 1\n"), "--check-config"]) == 2
    assert "unknown key web.port" in capsys.readouterr().err


def test_check_config_reads_the_web_config_file(tmp_path, capsys):
    assert exporter_main(["--check-config", "--web.config-file", str(tmp_path / "absent.yml")]) == 2
    assert "absent.yml" in capsys.readouterr().err


def test_flag_sets_a_setting(capsys):
    assert exporter_main(["--check-config", "--web.listen-address", "127.0.0.1:9100"]) == 0
    assert 'listen_address = "127.0.0.1:9100"' in capsys.readouterr().out


def test_a_password_in_the_clickhouse_url_is_refused():
    with pytest.raises(ConfigError, match="clickhouse.url: put the password in clickhouse.password_file"):
        load_config(None, environ={"HFTEL_CLICKHOUSE_URL": "http://writer:secret@127.0.0.1:8123"})


def test_a_clickhouse_url_must_be_http_or_https():
    with pytest.raises(ConfigError, match="clickhouse.url: expected an http:// or https:// URL"):
        load_config(None, environ={"HFTEL_CLICKHOUSE_URL": "tcp://127.0.0.1:9000"})


def test_a_ttl_that_is_not_an_interval_is_refused_with_its_key():
    with pytest.raises(ConfigError, match="clickhouse.audit_ttl: 'forever' is not a TTL interval"):
        load_config(None, environ={"HFTEL_CLICKHOUSE_AUDIT_TTL": "forever"})


def test_a_system_database_is_refused_with_its_key():
    with pytest.raises(ConfigError, match="clickhouse.database: 'system' is a ClickHouse system database"):
        load_config(None, environ={"HFTEL_CLICKHOUSE_DATABASE": "system"})


def test_state_paths_follow_systemds_state_directory():
    from hftel_exporter.config import state_path

    assert state_path("spool", {"STATE_DIRECTORY": "/var/lib/hftel-exporter"}) == "/var/lib/hftel-exporter/spool"
    assert state_path("chdb", {"XDG_STATE_HOME": "/home/u/.state"}) == "/home/u/.state/hftel-exporter/chdb"


def test_the_log_file_defaults_to_systemds_logs_directory_and_is_off_elsewhere():
    from hftel_exporter.config import logfile_path

    config = load_config(None, environ={})
    assert logfile_path(config, {"LOGS_DIRECTORY": "/var/log/hftel"}) == "/var/log/hftel/engine.json"
    assert logfile_path(config, {}) == ""
