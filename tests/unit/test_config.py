"""Settings: flags win over the config file, the file over defaults; bad files fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferencehub.config import Settings, load_settings
from inferencehub.errors import ConfigError


def test_defaults_follow_triton_ports_and_loopback(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert (settings.gateway.host, settings.gateway.http_port, settings.gateway.grpc_port) == (
        "127.0.0.1",
        8000,
        8001,
    )
    assert settings.worker.models_dir == tmp_path / "models"


def test_flags_win_over_file_and_file_over_defaults(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(
        '[gateway]\nhttp_port = 9000\ngrpc_port = 9001\n[worker]\nmodels_dir = "repo"\n'
    )
    settings = load_settings(config, {"gateway.grpc_port": 7001, "gateway.host": None})
    assert settings.gateway.http_port == 9000
    assert settings.gateway.grpc_port == 7001
    assert settings.gateway.host == "127.0.0.1"
    assert settings.worker.models_dir == tmp_path / "repo"  # relative to the file


def test_inferencehub_toml_in_cwd_is_read(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "inferencehub.toml").write_text("log_level = 'DEBUG'\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().log_level == "DEBUG"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[gateway]\nhttp_prot = 1\n", "invalid setting gateway.http_prot"),
        ("[gateway]\nhttp_port = 70000\n", "invalid setting gateway.http_port"),
        ("[gateway\n", "is not valid TOML"),
    ],
)
def test_bad_config_files_are_named(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.toml")


def test_child_file_is_private_and_round_trips(tmp_path: Path) -> None:
    settings = load_settings(None, {"gateway.http_port": 1234, "worker.models_dir": tmp_path})
    path = tmp_path / "settings.json"
    settings.to_child_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert Settings.from_child_file(path) == settings


def test_log_level_is_validated_and_case_insensitive(tmp_path: Path) -> None:
    assert load_settings(None, {"log_level": "debug"}).log_level == "DEBUG"
    with pytest.raises(ConfigError, match="invalid setting log_level"):
        load_settings(None, {"log_level": "loud"})


def test_relative_runtime_dir_in_file_is_relative_to_the_file(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('[supervisor]\nruntime_dir = "run"\n')
    assert load_settings(config).supervisor.runtime_dir == tmp_path / "run"


def test_workers_placement_and_remote_workers(tmp_path: Path) -> None:
    import os

    from inferencehub.config import load_settings

    config = tmp_path / "hub.toml"
    config.write_text(
        '[[supervisor.placement]]\nmodels = ["big"]\ncuda_device_id = 1\n'
        "[[supervisor.placement]]\nintra_op_threads = 3\n"
        '[[gateway.remote_workers]]\naddress = "gpu:9000"\nca_cert = "tls/ca.crt"\n'
        'client_cert = "tls/gw.crt"\nclient_key = "tls/gw.key"\n'
    )
    settings = load_settings(config, {"supervisor.workers": 5})
    first, second = settings.worker_placements()  # placement wins over workers = 5
    assert first.models == ["big"] and second.models is None
    big = settings.for_worker(first, 2).worker
    assert big.cuda_device_id == 1
    assert big.intra_op_threads == max(1, len(os.sched_getaffinity(0)) // 2)  # a share
    assert settings.for_worker(second, 2).worker.intra_op_threads == 3
    (remote,) = settings.gateway.remote_workers
    assert remote.ca_cert == tmp_path / "tls" / "ca.crt"  # relative to the config file
    assert len(load_settings(None, {"supervisor.workers": 3}).worker_placements()) == 3
    assert load_settings(None, {"supervisor.workers": 0}).worker_placements() == []


def test_cpu_pins_are_distinct_cores_and_set_the_thread_default(tmp_path: Path) -> None:
    from inferencehub.config import load_settings
    from inferencehub.errors import ConfigError

    config = tmp_path / "hub.toml"
    config.write_text(
        '[[supervisor.placement]]\nmodels = ["heavy"]\ncpus = [3, 2]\n'
        '[[supervisor.placement]]\nmodels = ["light"]\n'
    )
    settings = load_settings(config)
    heavy, light = settings.worker_placements()
    pinned = settings.for_worker(heavy, 2).worker
    # Its threads are left to the worker, which counts the cores it is pinned to.
    assert pinned.cpus == [2, 3] and pinned.intra_op_threads == 0
    assert settings.for_worker(light, 2).worker.cpus is None
    for bad, expected in (
        ("[1, 1]", "each CPU may be listed once"),
        ("[-1]", "greater than or equal to 0"),
        ("[]", "at least 1"),
    ):
        config.write_text(f"[[supervisor.placement]]\ncpus = {bad}\n")
        with pytest.raises(ConfigError, match=expected):
            load_settings(config)
