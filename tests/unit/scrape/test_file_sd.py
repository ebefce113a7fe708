"""file_sd_configs: JSON and YAML files, globs, reload on change, bad files keep old targets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from clearsight.scrape.config import ConfigError, FileSDConfig, parse_scrape_configs
from clearsight.scrape.discovery import FileDiscovery, parse_target_groups
from clearsight.scrape.manager import REPORT_SERIES, ScrapeManager
from tests.unit.scrape.helpers import ExpositionServer, MemorySink, select


@pytest.fixture
def servers() -> Iterator[tuple[ExpositionServer, ExpositionServer]]:
    a, b = ExpositionServer(), ExpositionServer()
    a.exposition.body = "from_a 1\n"
    b.exposition.body = "from_b 1\n"
    yield a, b
    a.close()
    b.close()


def test_parse_json_and_yaml_groups() -> None:
    (g,) = parse_target_groups(
        json.dumps([{"targets": ["h:1", "h:2"], "labels": {"env": "x"}}]).encode(), "/sd/a.json"
    )
    assert g.source == "file:/sd/a.json:0"
    assert g.targets == ((("__address__", "h:1"),), (("__address__", "h:2"),))
    assert dict(g.labels) == {"env": "x", "__meta_filepath": "/sd/a.json"}
    groups = parse_target_groups(b"- targets: [h:3]\n- targets: [h:4]\n  labels: {a: b}\n", "/sd/b.yml")
    assert len(groups) == 2
    assert parse_target_groups(b"", "/sd/empty.yaml") == []


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (b"{", "/x.json", "/x.json: cannot decode"),
        (b"targets: [a]", "/x.yml", "expected a list of target groups"),
        (b"- targets: [1]", "/x.yml", "/x.yml: [0].targets[0]: expected a host:port string"),
        (b"- targets: ['http://a/b']", "/x.yml", "is not a valid hostname"),
        (b"- labels: {'a-b': x}", "/x.yml", "'a-b' is not a valid label name"),
        (b"- targetz: [a]", "/x.yml", "unknown field 'targetz'"),
    ],
)
def test_bad_files(data: bytes, path: str, message: str) -> None:
    with pytest.raises(ConfigError) as ei:
        parse_target_groups(data, path)
    assert message in str(ei.value)


def test_globs_changes_and_bad_files_keep_previous_groups(tmp_path: Path) -> None:
    d = FileDiscovery(FileSDConfig((str(tmp_path / "*.yml"), str(tmp_path / "one.json"))))
    assert d.refresh() == []
    (tmp_path / "a.yml").write_text("- targets: [h:1]\n")
    (tmp_path / "one.json").write_text('[{"targets": ["h:2"]}]')
    (tmp_path / "ignored.txt").write_text("- targets: [h:9]\n")
    assert [t for g in d.refresh() for t in g.targets] == [
        (("__address__", "h:1"),),
        (("__address__", "h:2"),),
    ]
    (tmp_path / "a.yml").write_text("- targets: [h:1, h:3] # now two\n")
    assert len(d.refresh()[0].targets) == 2
    (tmp_path / "a.yml").write_text("- targets: [")  # broken: keep what we had
    assert len(d.refresh()[0].targets) == 2
    assert str(tmp_path / "a.yml") in d.last_errors
    (tmp_path / "a.yml").unlink()  # gone: its groups go
    assert [t for g in d.refresh() for t in g.targets] == [(("__address__", "h:2"),)]
    assert d.last_errors == {}


def test_manager_follows_file_changes(
    tmp_path: Path, servers: tuple[ExpositionServer, ExpositionServer]
) -> None:
    a, b = servers
    sd = tmp_path / "targets.json"
    sd.write_text(json.dumps([{"targets": [a.address], "labels": {"team": "x"}}]))
    cfgs = parse_scrape_configs(
        yaml.safe_load(
            "- job_name: sd\n  file_sd_configs: [{files: ['*.json'], refresh_interval: 1h}]\n"
            "  relabel_configs: [{source_labels: [__meta_filepath], regex: '.*/(.*)', target_label: file}]\n"
        ),
        "prom.yml",
        base_dir=str(tmp_path),
    )
    sink = MemorySink()

    async def main() -> None:
        m = ScrapeManager(cfgs, sink, "t", run_loops=False)
        await m.start()
        (st,) = m.targets()
        assert dict(st.labels) == {"file": "targets.json", "instance": a.address, "job": "sd", "team": "x"}
        await m.scrape_now()
        assert select(sink.batches[-1], "from_a")
        # the file now lists b instead of a
        sd.write_text(json.dumps([{"targets": [b.address]}]))
        n = len(sink.batches)
        await m.refresh_discovery()
        assert [dict(s.labels)["instance"] for s in m.targets()] == [b.address]
        (stale,) = sink.batches[n:]
        assert sorted(dict(p.labels)["__name__"] for p in stale) == sorted(["from_a", *REPORT_SERIES])
        assert all(p.stale for p in stale)
        await m.scrape_now()
        assert select(sink.batches[-1], "from_b")
        # a broken file keeps b
        sd.write_text("[{")
        await m.refresh_discovery()
        assert [dict(s.labels)["instance"] for s in m.targets()] == [b.address]
        assert str(sd) in m.discovery_errors()
        await m.stop()

    asyncio.run(main())


def test_manager_refreshes_on_its_own(
    tmp_path: Path, servers: tuple[ExpositionServer, ExpositionServer]
) -> None:
    a, b = servers
    sd = tmp_path / "t.yml"
    sd.write_text(f"- targets: ['{a.address}']\n")
    cfgs = parse_scrape_configs(
        yaml.safe_load(
            f"- job_name: sd\n  scrape_interval: 1h\n  file_sd_configs: [{{files: ['{sd}'], refresh_interval: 100ms}}]\n"
        ),
        "prom.yml",
    )

    async def main() -> None:
        from tests.unit.scrape.helpers import wait_for_async

        m = ScrapeManager(cfgs, MemorySink(), "t")
        await m.start()
        assert [dict(s.labels)["instance"] for s in m.targets()] == [a.address]
        sd.write_text(f"- targets: ['{b.address}']\n")
        await wait_for_async(lambda: [dict(s.labels)["instance"] for s in m.targets()] == [b.address])
        await m.stop()

    asyncio.run(main())
