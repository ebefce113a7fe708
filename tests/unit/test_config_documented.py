"""Every configuration key is documented (a setting nobody can find does not exist)."""

import dataclasses
from pathlib import Path

from clearsight.config import _SECTIONS, Config

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_key_is_documented() -> None:
    text = DOC.read_text()
    cfg = Config()
    missing = []
    for section, attr in _SECTIONS.items():
        if f"## `{section}`" not in text:
            missing.append(section)
        for f in dataclasses.fields(getattr(cfg, attr)):
            if f"| `{f.name}` |" not in text:
                missing.append(f"{section}.{f.name}")
    assert not missing, f"undocumented settings in docs/configuration.md: {missing}"
