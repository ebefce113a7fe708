"""File-based service discovery (Prometheus ``file_sd_configs``).

Each file (``*`` globs allowed in the last path element) holds a JSON or YAML list of
``{"targets": ["host:port", ...], "labels": {...}}``; the extension (.json, .yml, .yaml) picks the
decoder. Every group gets ``__meta_filepath``. Files are re-read every ``refresh_interval`` (no
inotify): a file that fails to read or parse keeps its previous groups (as Prometheus does) and the
error is kept in ``last_errors``; a file that disappears drops its groups.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from typing import Any

import yaml

from clearsight.scrape.config import ConfigError, FileSDConfig, parse_label_map
from clearsight.scrape.target import ADDRESS, TargetGroup

log = logging.getLogger("clearsight.scrape.discovery")

META_FILEPATH = "__meta_filepath"


def parse_target_groups(data: bytes, path: str) -> list[TargetGroup]:
    """Decodes one file_sd file; raises ConfigError naming the file and the bad entry."""
    try:
        if path.lower().endswith(".json"):
            obj: Any = json.loads(data)
        else:
            obj = yaml.safe_load(data)
    except (ValueError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot decode: {e}") from None
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise ConfigError(f"{path}: expected a list of target groups")
    groups = []
    for i, item in enumerate(obj):
        p = f"{path}: [{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{p}: expected a mapping with 'targets' and 'labels'")
        unknown = set(item) - {"targets", "labels"}
        if unknown:
            raise ConfigError(f"{p}: unknown field {sorted(unknown)[0]!r}")
        targets = item.get("targets") or []
        if not isinstance(targets, list):
            raise ConfigError(f"{p}.targets: expected a list")
        tl = []
        for j, t in enumerate(targets):
            if not isinstance(t, str) or t == "":
                raise ConfigError(f"{p}.targets[{j}]: expected a host:port string, got {t!r}")
            if "/" in t:
                raise ConfigError(f"{p}.targets[{j}]: {t!r} is not a valid hostname")
            tl.append(((ADDRESS, t),))
        labels = dict(parse_label_map(item.get("labels"), f"{p}.labels"))
        labels[META_FILEPATH] = path
        groups.append(TargetGroup(f"file:{path}:{i}", tuple(tl), tuple(sorted(labels.items()))))
    return groups


class FileDiscovery:
    """Reads the files of one ``file_sd_configs`` entry; ``refresh()`` returns all current groups."""

    def __init__(self, cfg: FileSDConfig) -> None:
        self.cfg = cfg
        self._last: dict[str, list[TargetGroup]] = {}
        self._stamp: dict[str, tuple[int, int, int]] = {}
        self.last_errors: dict[str, str] = {}

    def paths(self) -> list[str]:
        found: set[str] = set()
        for pattern in self.cfg.files:
            found.update(p for p in glob.glob(pattern) if os.path.isfile(p))
        return sorted(found)

    def refresh(self) -> list[TargetGroup]:
        current: dict[str, list[TargetGroup]] = {}
        errors: dict[str, str] = {}
        for path in self.paths():
            try:
                st = os.stat(path)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
                if self._stamp.get(path) == stamp and path in self._last:
                    current[path] = self._last[path]
                    continue
                with open(path, "rb") as f:
                    data = f.read()
                current[path] = parse_target_groups(data, path)
                self._stamp[path] = stamp
            except (OSError, ConfigError) as e:
                errors[path] = str(e)
                log.error("file_sd: cannot read %s: %s", path, e)
                if path in self._last:
                    current[path] = self._last[path]  # keep the last good groups
        self._last = current
        self._stamp = {p: s for p, s in self._stamp.items() if p in current}
        self.last_errors = errors
        return [g for p in sorted(current) for g in current[p]]
