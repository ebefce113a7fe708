"""What a dashboard is, and the check of a dashboard sent by a client (pure).

A dashboard is ``{"title", "panels": [...], "variables": [...]}``:

- a panel: ``title``, ``type`` (``timeseries``, ``stat``, ``gauge``, ``table``, ``logs``), ``query``
  (PromQL, or LogQL for ``logs``; ``$name`` refers to a variable), optional ``unit`` (``""``,
  ``percent``, ``bytes``, ``bytes_per_second``) and ``width`` (1-2 grid columns);
- a variable: ``name`` (an identifier), ``label`` (whose values it offers: PromQL's
  ``label_values(<match>, <label>)``) and optional ``match`` (a series selector narrowing the values).

Unknown fields are refused, so a client's typo shows at once; an error names the field
(``panels[2].type: ...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PANEL_TYPES = ("timeseries", "stat", "gauge", "table", "logs")
UNITS = ("", "percent", "bytes", "bytes_per_second")
MAX_TITLE = 200
MAX_QUERY = 4096
MAX_PANELS = 50
MAX_VARIABLES = 10
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class DashboardError(ValueError):
    """A dashboard that cannot be stored; the message names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Dashboard:
    title: str
    panels: tuple[dict[str, Any], ...]
    variables: tuple[dict[str, Any], ...]

    def doc(self) -> dict[str, Any]:
        return {"title": self.title, "panels": list(self.panels), "variables": list(self.variables)}


def _fields(obj: Any, where: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise DashboardError(where or "body", "must be an object")
    extra = sorted(set(obj) - allowed)
    if extra:
        raise DashboardError(f"{where}{extra[0]}", "unknown field")
    for name in sorted(required):
        if name not in obj:
            raise DashboardError(f"{where}{name}", "required")
    return obj


def _text(
    obj: dict[str, Any], name: str, where: str, limit: int, *, default: str | None = None, empty: bool = False
) -> str:
    v = obj.get(name, default)
    if not isinstance(v, str):
        raise DashboardError(f"{where}{name}", "must be a string")
    if len(v) > limit:
        raise DashboardError(f"{where}{name}", f"longer than {limit} characters")
    if not empty and not v.strip():
        raise DashboardError(f"{where}{name}", "must not be empty")
    return v


def parse_dashboard(body: Any) -> Dashboard:
    """The dashboard in a request body (raises ``DashboardError``)."""
    d = _fields(body, "", {"title", "panels", "variables"}, {"title"})
    title = _text(d, "title", "", MAX_TITLE)
    panels_raw = d.get("panels", [])
    if not isinstance(panels_raw, list):
        raise DashboardError("panels", "must be an array")
    if len(panels_raw) > MAX_PANELS:
        raise DashboardError("panels", f"has {len(panels_raw)} entries, over the limit of {MAX_PANELS}")
    panels = []
    for i, p in enumerate(panels_raw):
        w = f"panels[{i}]."
        _fields(
            p,
            f"panels[{i}]" if not isinstance(p, dict) else w,
            {"title", "type", "query", "unit", "width"},
            {"title", "type", "query"},
        )
        ptype = _text(p, "type", w, 16)
        if ptype not in PANEL_TYPES:
            raise DashboardError(f"{w}type", f"{ptype!r} is not one of {', '.join(PANEL_TYPES)}")
        unit = _text(p, "unit", w, 32, default="", empty=True)
        if unit not in UNITS:
            raise DashboardError(f"{w}unit", f"{unit!r} is not one of {', '.join(repr(u) for u in UNITS)}")
        width = p.get("width", 1)
        if not isinstance(width, int) or isinstance(width, bool) or width not in (1, 2):
            raise DashboardError(f"{w}width", "must be 1 or 2")
        panels.append(
            {
                "title": _text(p, "title", w, MAX_TITLE),
                "type": ptype,
                "query": _text(p, "query", w, MAX_QUERY),
                "unit": unit,
                "width": width,
            }
        )
    vars_raw = d.get("variables", [])
    if not isinstance(vars_raw, list):
        raise DashboardError("variables", "must be an array")
    if len(vars_raw) > MAX_VARIABLES:
        raise DashboardError("variables", f"has {len(vars_raw)} entries, over the limit of {MAX_VARIABLES}")
    variables = []
    seen: set[str] = set()
    for i, v in enumerate(vars_raw):
        w = f"variables[{i}]."
        _fields(
            v,
            f"variables[{i}]" if not isinstance(v, dict) else w,
            {"name", "label", "match"},
            {"name", "label"},
        )
        name = _text(v, "name", w, 64)
        if not _NAME.fullmatch(name):
            raise DashboardError(f"{w}name", "must be an identifier (letters, digits, _)")
        if name in seen:
            raise DashboardError(f"{w}name", f"duplicate variable {name!r}")
        seen.add(name)
        label = _text(v, "label", w, 128)
        if not _NAME.fullmatch(label):
            raise DashboardError(f"{w}label", "must be a label name")
        variables.append(
            {"name": name, "label": label, "match": _text(v, "match", w, MAX_QUERY, default="", empty=True)}
        )
    return Dashboard(title, tuple(panels), tuple(variables))
