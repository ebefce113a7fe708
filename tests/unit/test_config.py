from pathlib import Path

import pytest

from clearsight.config import ConfigError, load_config, parse_duration_ms


def test_defaults_are_safe() -> None:
    cfg = load_config(env={})
    assert cfg.server.listen.startswith("127.0.0.1:")
    assert cfg.server.otlp_grpc_listen.startswith("127.0.0.1:")
    assert cfg.tenancy.trust_tenant_header is False
    assert cfg.retention_ms == 15 * 86400_000
    assert cfg.retention_size_bytes == 0  # unbounded


def test_retention_size_takes_a_size(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("storage:\n  retention_size: 2GB\n")
    assert load_config(f, env={}).retention_size_bytes == 2 << 30


def test_yaml_then_env_then_flags(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("storage:\n  data_dir: /from/yaml\n  retention: 7d\nlimits:\n  max_series_per_request: 10\n")
    cfg = load_config(f, env={"CLEARSIGHT_STORAGE_RETENTION": "3d"}, overrides={"storage.data_dir": "/from/flag"})
    assert cfg.storage.data_dir == "/from/flag"
    assert cfg.retention_ms == 3 * 86400_000
    assert cfg.limits.max_series_per_request == 10


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("storage:\n  retension: 7d\n", "c.yaml: storage.retension: unknown key"),
        ("storage:\n  retention: seven days\n", "c.yaml: storage.retention: invalid duration"),
        ("storage:\n  retention_size: lots\n", "c.yaml: storage.retention_size: not a valid size"),
        ("server:\n  listen: nowhere\n", "c.yaml: server.listen: invalid listen address"),
        ("limits:\n  max_series_per_request: lots\n", "c.yaml: limits.max_series_per_request: expected an integer"),
        ("limits:\n  max_series_per_request: -1\n", "must not be negative"),
        ("query:\n  stream_batch_samples: -1\n", "c.yaml: query.stream_batch_samples: must not be negative"),
        ("bogus: 1\n", "c.yaml: bogus: unknown section"),
        ("- a\n", "top level must be a mapping"),
        ("storage: [\n", "invalid YAML"),
        ("tenancy:\n  trust_tenant_header: maybe\n", "expected a boolean"),
        ("storage:\n  head_log_segment_bytes: 4096\n",
         "c.yaml: storage.head_log_segment_bytes: must be between 65536 and 1073741824 .got 4096."),
    ],
)
def test_bad_config_names_file_key_and_reason(tmp_path: Path, yaml_text: str, message: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(f, env={})


def test_bad_env_is_named() -> None:
    with pytest.raises(ConfigError, match="CLEARSIGHT_NOPE_X"):
        load_config(env={"CLEARSIGHT_NOPE_X": "1"})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml", env={})


def test_durations() -> None:
    assert parse_duration_ms("1h30m") == 5_400_000
    assert parse_duration_ms("500ms") == 500
    assert parse_duration_ms("2w") == 14 * 86400_000
    for bad in ("", "5", "1x", "m"):
        with pytest.raises(ValueError):
            parse_duration_ms(bad)


def test_store_memory_bounds() -> None:
    cfg = load_config(env={"CLEARSIGHT_STORAGE_DUCKDB_MEMORY_LIMIT": "1GiB"})
    assert cfg.storage.duckdb_memory_limit == "1GiB"
    with pytest.raises(ConfigError, match=r"storage\.duckdb_memory_limit"):
        load_config(env={"CLEARSIGHT_STORAGE_DUCKDB_MEMORY_LIMIT": "lots"})
    with pytest.raises(ConfigError, match=r"storage\.duckdb_threads"):
        load_config(env={"CLEARSIGHT_STORAGE_DUCKDB_THREADS": "0"})


def test_series_cap_is_auto_by_default_and_takes_a_number(tmp_path: Path) -> None:
    from clearsight.api.prometheus_status import config_document
    from clearsight.pipeline.series_budget import AUTO

    cfg = load_config(env={})
    assert cfg.limits.max_series_total == AUTO
    assert config_document(cfg)["limits"]["max_series_total"] == "auto"  # shown as written
    f = tmp_path / "c.yaml"
    f.write_text("limits:\n  max_series_total: 250000\n")
    assert load_config(f, env={}).limits.max_series_total == 250_000
    assert load_config(f, env={"CLEARSIGHT_LIMITS_MAX_SERIES_TOTAL": "auto"}).limits.max_series_total == AUTO
    f.write_text("limits:\n  max_series_total: -1\n")
    with pytest.raises(ConfigError, match=r"limits\.max_series_total: must not be negative"):
        load_config(f, env={})


def test_every_store_cache_has_a_key() -> None:
    cfg = load_config(env={"CLEARSIGHT_STORAGE_SELECTION_CACHE_IDS": "0",
                           "CLEARSIGHT_STORAGE_LABEL_ORDER_CACHE_IDS": "1000",
                           "CLEARSIGHT_STORAGE_OVERWRITE_WINDOW_SAMPLES": "5000",
                           "CLEARSIGHT_QUERY_PREPARED_CACHE_ENTRIES": "16",
                           "CLEARSIGHT_STORAGE_HEAD_LOG_SEGMENT_BYTES": "1048576"})
    assert (cfg.storage.selection_cache_ids, cfg.storage.label_order_cache_ids, cfg.storage.overwrite_window_samples,
            cfg.query.prepared_cache_entries, cfg.storage.head_log_segment_bytes) == (0, 1000, 5000, 16, 1 << 20)


def test_the_build_and_import_switches_are_not_settings() -> None:
    """CLEARSIGHT_PURE_PYTHON (clearsight/_compiled.py) and the build's switches may be set where the
    server runs (a profiling session) without being taken for unknown settings."""
    env = {"CLEARSIGHT_PURE_PYTHON": "1", "CLEARSIGHT_COMPILED_PYTHON": "1", "CLEARSIGHT_NO_NATIVE": "1"}
    assert load_config(env=env) == load_config(env={})
