"""Prometheus relabeling: ``relabel_configs`` (targets) and ``metric_relabel_configs`` (samples).

Semantics follow Prometheus' ``model/relabel``: regexes are fully anchored, ``source_labels``
values are joined with ``separator`` (absent labels read as ""), ``replacement`` and a templated
``target_label`` expand ``$1``, ``${1}``, ``$name``, ``${name}`` and ``$$`` as Go's
``regexp.Expand`` does (``$1x`` names the group ``1x``, which does not exist, so it expands to "").
A label set to "" is removed. Regexes use Python's ``re`` with a few RE2 spellings translated
(POSIX classes such as ``[[:alpha:]]``, a leading ``(?i)``); see docs/scraping.md.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

ACTIONS = (
    "replace",
    "keep",
    "drop",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "hashmod",
    "lowercase",
    "uppercase",
    "keepequal",
    "dropequal",
)

DEFAULT_REGEX = "(.*)"
DEFAULT_SEPARATOR = ";"
DEFAULT_REPLACEMENT = "$1"

_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_NAME_CHARS_RE = re.compile(r"\w+")
_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_LEADING_FLAGS_RE = re.compile(r"\(\?([imsU]+)\)")


def is_valid_label_name(name: str) -> bool:
    return _LABEL_NAME_RE.match(name) is not None


def compile_regex(pattern: str) -> re.Pattern[str]:
    """Compiles a Prometheus (RE2) regex, fully anchored. Raises ValueError when invalid."""
    src = pattern
    flags = ""
    m = _LEADING_FLAGS_RE.match(src)
    if m is not None:
        if "U" in m.group(1):
            raise ValueError(f"invalid regex {pattern!r}: the U (ungreedy) flag is not supported")
        flags, src = m.group(1), src[m.end() :]
    src = re.sub(r"\[:(\^?)([a-z]+):\]", lambda mm: _posix(mm, pattern), src)
    wrapped = f"(?{flags}:{src})" if flags else f"(?:{src})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return re.compile(wrapped + r"\Z")
    except (re.error, FutureWarning, DeprecationWarning, OverflowError, RecursionError) as e:
        raise ValueError(f"invalid regex {pattern!r}: {e}") from None


def _posix(m: re.Match[str], pattern: str) -> str:
    cls = _POSIX_CLASSES.get(m.group(2))
    if cls is None:
        raise ValueError(f"invalid regex {pattern!r}: unknown character class [:{m.group(2)}:]")
    if m.group(1):
        raise ValueError(f"invalid regex {pattern!r}: negated POSIX classes are not supported")
    return cls


@dataclass(frozen=True)
class RelabelConfig:
    action: str = "replace"
    source_labels: tuple[str, ...] = ()
    separator: str = DEFAULT_SEPARATOR
    regex: str = DEFAULT_REGEX
    target_label: str = ""
    replacement: str = DEFAULT_REPLACEMENT
    modulus: int = 0
    pattern: re.Pattern[str] = field(default=re.compile(r"(?:(.*))\Z"), compare=False, repr=False)

    @staticmethod
    def make(
        action: str = "replace",
        source_labels: Sequence[str] = (),
        separator: str = DEFAULT_SEPARATOR,
        regex: str = DEFAULT_REGEX,
        target_label: str = "",
        replacement: str = DEFAULT_REPLACEMENT,
        modulus: int = 0,
    ) -> RelabelConfig:
        """Builds and validates a config (raises ValueError with Prometheus' wording)."""
        cfg = RelabelConfig(
            action,
            tuple(source_labels),
            separator,
            regex,
            target_label,
            replacement,
            modulus,
            compile_regex(regex),
        )
        validate(cfg)
        return cfg


_RELABEL_TARGET_RE = re.compile(r"(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+\Z")


def validate(c: RelabelConfig) -> None:
    """Prometheus' relabel config checks; raises ValueError."""
    a = c.action
    if a not in ACTIONS:
        raise ValueError(f"unknown action {a!r}")
    for n in c.source_labels:
        if not is_valid_label_name(n):
            raise ValueError(f"{n!r} is not a valid label name in 'source_labels'")
    if a == "hashmod" and c.modulus == 0:
        raise ValueError("relabel configuration for hashmod requires non-zero modulus")
    if c.modulus < 0:
        raise ValueError("'modulus' must not be negative")
    needs_target = ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal")
    if a in needs_target and c.target_label == "":
        raise ValueError(f"relabel configuration for {a} action requires 'target_label' value")
    if a == "replace" and not _RELABEL_TARGET_RE.match(c.target_label):
        raise ValueError(f"{c.target_label!r} is invalid 'target_label' for {a} action")
    if a in ("hashmod", "lowercase", "uppercase", "keepequal", "dropequal") and not is_valid_label_name(
        c.target_label
    ):
        raise ValueError(f"{c.target_label!r} is invalid 'target_label' for {a} action")
    if a in ("lowercase", "uppercase") and c.replacement != DEFAULT_REPLACEMENT:
        raise ValueError(f"'replacement' can not be set for {a} action")
    if a == "labelmap" and not _RELABEL_TARGET_RE.match(c.replacement):
        raise ValueError(f"{c.replacement!r} is invalid 'replacement' for {a} action")
    if a in ("keepequal", "dropequal") and (
        c.regex != DEFAULT_REGEX
        or c.modulus != 0
        or c.separator != DEFAULT_SEPARATOR
        or c.replacement != DEFAULT_REPLACEMENT
    ):
        raise ValueError(f"{a} action requires only 'source_labels' and 'target_label', and no other fields")
    if a in ("labeldrop", "labelkeep") and (
        c.source_labels
        or c.target_label
        or c.modulus != 0
        or c.separator != DEFAULT_SEPARATOR
        or c.replacement != DEFAULT_REPLACEMENT
    ):
        raise ValueError(f"{a} action requires only 'regex', and no other fields")


def expand(template: str, m: re.Match[str]) -> str:
    """Go ``regexp.Expand`` semantics for ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``."""
    if "$" not in template:
        return template
    out: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        i = j + 1
        if i < n and template[i] == "$":
            out.append("$")
            i += 1
            continue
        brace = i < n and template[i] == "{"
        k = i + 1 if brace else i
        nm = _NAME_CHARS_RE.match(template, k)
        if nm is None:
            out.append("$")  # malformed: a literal '$'
            continue
        name = nm.group(0)
        end = nm.end()
        if brace:
            if end >= n or template[end] != "}":
                out.append("$")
                continue
            end += 1
        i = end
        out.append(_group(m, name))
    return "".join(out)


def _group(m: re.Match[str], name: str) -> str:
    if name.isascii() and name.isdigit():
        if len(name) > 1 and name[0] == "0":
            return _named(m, name)
        num = int(name) if len(name) < 9 else -1
        if 0 <= num <= (m.re.groups or 0):
            return m.group(num) or ""
        return ""
    return _named(m, name)


def _named(m: re.Match[str], name: str) -> str:
    if name in m.re.groupindex:
        return m.group(name) or ""
    return ""


def _hashmod(val: str, modulus: int) -> int:
    digest = hashlib.md5(val.encode(), usedforsecurity=False).digest()
    # Prometheus folds the MD5 digest into a uint64 whose value is its last 8 bytes, big-endian.
    return int.from_bytes(digest[8:], "big") % modulus


def process(
    labels: Mapping[str, str] | Iterable[tuple[str, str]], configs: Sequence[RelabelConfig]
) -> dict[str, str] | None:
    """Applies ``configs`` in order; returns the resulting labels (no empty values) or None if dropped."""
    lb: dict[str, str] = dict(labels.items() if isinstance(labels, Mapping) else labels)
    for c in configs:
        if not apply_one(lb, c):
            return None
    return {k: v for k, v in lb.items() if v != ""}


def apply_one(lb: dict[str, str], c: RelabelConfig) -> bool:
    """Applies one config to ``lb`` in place; False when the target/sample is dropped."""
    a = c.action
    val = c.separator.join(lb.get(n, "") for n in c.source_labels)
    if a == "replace":
        m = c.pattern.match(val)
        if m is None:
            return True
        target = expand(c.target_label, m)
        if not is_valid_label_name(target):
            lb.pop(c.target_label, None)
            return True
        res = expand(c.replacement, m)
        if res == "":
            lb.pop(c.target_label, None)
        else:
            lb[target] = res
    elif a == "keep":
        if c.pattern.match(val) is None:
            return False
    elif a == "drop":
        if c.pattern.match(val) is not None:
            return False
    elif a == "hashmod":
        lb[c.target_label] = str(_hashmod(val, c.modulus))
    elif a == "lowercase":
        _set(lb, c.target_label, val.lower())
    elif a == "uppercase":
        _set(lb, c.target_label, val.upper())
    elif a == "keepequal":
        if lb.get(c.target_label, "") != val:
            return False
    elif a == "dropequal":
        if lb.get(c.target_label, "") == val:
            return False
    elif a == "labelmap":
        for name, value in list(lb.items()):
            m = c.pattern.match(name)
            if m is not None:
                res = expand(c.replacement, m)
                if res:
                    lb[res] = value
    elif a == "labeldrop":
        for name in [n for n in lb if c.pattern.match(n) is not None]:
            del lb[name]
    elif a == "labelkeep":
        for name in [n for n in lb if c.pattern.match(n) is None]:
            del lb[name]
    else:  # pragma: no cover - validate() rejects unknown actions
        raise ValueError(f"unknown relabel action {a!r}")
    return True


def _set(lb: dict[str, str], name: str, value: str) -> None:
    if value == "":
        lb.pop(name, None)
    else:
        lb[name] = value
