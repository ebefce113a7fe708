"""Silences: matchers over a time span that mute the alerts they match, persisted in the data dir.

Alertmanager's model (id, matchers, startsAt, endsAt, createdBy, comment, updatedAt; pending ->
active -> expired) plus ``expire_on_resolve``: the silence expires by itself once every alert it
has muted is resolved (Alertmanager #1057; "mute until resolved", #3825, is such a silence with
no practical end). The file is rewritten atomically (temp file + rename) on every change.
Expired silences are kept for ``retention`` (Alertmanager: 120 h), then dropped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from clearsight.model.matchers import Matcher, MatchType, matches_all
from clearsight.notify.clock import Clock
from clearsight.notify.matchers import MatcherError, parse_matcher

log = logging.getLogger("clearsight.notify.silences")

FOREVER = 100 * 365 * 86400.0  # "until resolved": an end far away, expiry comes from resolution


class SilenceError(ValueError):
    """Invalid silence input (400) or an unknown id (``not_found``)."""

    def __init__(self, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.not_found = not_found


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    updated_at: float
    expire_on_resolve: bool = False
    muted: frozenset[str] = field(default=frozenset())  # fingerprints this silence has muted
    schedule: str = ""  # "<schedule id>@<window start>" for a recurring window's silence (notify/schedules.py)

    def state(self, now: float) -> str:
        if now >= self.ends_at:
            return "expired"
        if now < self.starts_at:
            return "pending"
        return "active"

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches_all(self.matchers, tuple(sorted(labels.items())))


def matcher_json(m: Matcher) -> dict[str, Any]:
    return {"name": m.name, "value": m.value, "isRegex": m.type in (MatchType.RE, MatchType.NRE),
            "isEqual": m.type in (MatchType.EQ, MatchType.RE)}


def matcher_from_json(obj: Any, where: str) -> Matcher:
    if not isinstance(obj, Mapping):
        raise SilenceError(f"{where}: expected a matcher object {{name, value, isRegex, isEqual}}")
    name, value = obj.get("name"), obj.get("value")
    is_regex, is_equal = obj.get("isRegex", False), obj.get("isEqual", True)
    if not isinstance(name, str) or not name:
        raise SilenceError(f"{where}.name: required")
    if not isinstance(value, str):
        raise SilenceError(f"{where}.value: expected a string")
    if not isinstance(is_regex, bool) or not isinstance(is_equal, bool):
        raise SilenceError(f"{where}: isRegex and isEqual must be booleans")
    op = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}[(is_regex, is_equal)]
    quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    try:
        return parse_matcher(f"{name}{op}{quoted}")
    except MatcherError as e:
        raise SilenceError(f"{where}: {e}") from None


def silence_json(s: Silence, now: float) -> dict[str, Any]:
    from clearsight.notify.alert import format_time

    return {"id": s.id, "matchers": [matcher_json(m) for m in s.matchers], "startsAt": format_time(s.starts_at),
            "endsAt": format_time(s.ends_at), "updatedAt": format_time(s.updated_at), "createdBy": s.created_by,
            "comment": s.comment, "status": {"state": s.state(now)}, "expireOnResolve": s.expire_on_resolve}


class Silences:
    def __init__(self, clock: Clock, path: Path | None = None, retention: float = 120 * 3600.0) -> None:
        self._clock = clock
        self._path = path
        self._retention = retention
        self._by_id: dict[str, Silence] = {}
        self.version = 0  # bumped on every change (caches of "who mutes what" key on it)
        self._dirty = False  # muted sets changed since the last save
        if path is not None:
            self._load(path)

    # -- persistence
    def _load(self, path: Path) -> None:
        try:
            raw = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, orjson.JSONDecodeError) as e:
            log.error("cannot read silences file %s: %s; starting with none", path, e)
            return
        for item in raw.get("silences", []):
            try:
                s = Silence(id=item["id"], matchers=tuple(matcher_from_json(m, "matcher") for m in item["matchers"]),
                            starts_at=item["startsAt"], ends_at=item["endsAt"], created_by=item["createdBy"],
                            comment=item["comment"], updated_at=item["updatedAt"],
                            expire_on_resolve=item.get("expireOnResolve", False),
                            muted=frozenset(item.get("muted", [])), schedule=str(item.get("schedule", "")))
            except (KeyError, TypeError, SilenceError) as e:
                log.error("skipping unreadable silence in %s: %s", path, e)
                continue
            self._by_id[s.id] = s

    def _save(self) -> None:
        self.version += 1
        self._dirty = False
        if self._path is None:
            return
        items = [{"id": s.id, "matchers": [matcher_json(m) for m in s.matchers], "startsAt": s.starts_at,
                  "endsAt": s.ends_at, "createdBy": s.created_by, "comment": s.comment, "updatedAt": s.updated_at,
                  "expireOnResolve": s.expire_on_resolve, "muted": sorted(s.muted), "schedule": s.schedule}
                 for s in self._by_id.values()]
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(orjson.dumps({"version": 1, "silences": items}, option=orjson.OPT_INDENT_2))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)

    # -- API
    def get(self, sid: str) -> Silence:
        try:
            return self._by_id[sid]
        except KeyError:
            raise SilenceError(f"silence {sid!r} not found", not_found=True) from None

    def all(self) -> list[Silence]:
        return list(self._by_id.values())

    def put(self, matchers: Iterable[Matcher], starts_at: float, ends_at: float, created_by: str, comment: str,
            *, sid: str = "", expire_on_resolve: bool = False, schedule: str = "") -> str:
        """Creates (or updates ``sid``) a silence; returns its id (a new one when matchers changed).
        ``schedule`` marks the silence of a recurring window (set only by notify/schedules.py)."""
        now = self._clock.now()
        ms = tuple(matchers)
        if not ms:
            raise SilenceError("matchers: at least one matcher required")
        if all(m.matches_empty() for m in ms):
            raise SilenceError("matchers: at least one matcher must not match the empty string "
                               "(a silence must not match every alert)")
        if not created_by.strip():
            raise SilenceError("createdBy: required")
        if not comment.strip():
            raise SilenceError("comment: required")
        starts_at = starts_at or now
        if ends_at <= starts_at:
            raise SilenceError("endsAt: must be after startsAt")
        if ends_at <= now:
            raise SilenceError("endsAt: must be in the future")
        if sid:
            old = self.get(sid)
            if old.state(now) != "expired" and old.matchers == ms:
                starts = old.starts_at if old.state(now) == "active" else max(starts_at, now)
                self._by_id[sid] = replace(old, starts_at=starts, ends_at=ends_at, created_by=created_by,
                                           comment=comment, updated_at=now, expire_on_resolve=expire_on_resolve)
                self._save()
                return sid
            if old.state(now) != "expired":
                self._expire(old, now)
        new_id = str(uuid.uuid4())
        self._by_id[new_id] = Silence(new_id, ms, max(starts_at, now), ends_at, created_by, comment, now,
                                      expire_on_resolve, schedule=schedule)
        self._save()
        return new_id

    def _expire(self, s: Silence, now: float) -> None:
        if s.state(now) == "pending":
            self._by_id[s.id] = replace(s, starts_at=now, ends_at=now, updated_at=now)
        else:
            self._by_id[s.id] = replace(s, ends_at=now, updated_at=now)

    def expire(self, sid: str) -> Silence:
        now = self._clock.now()
        s = self.get(sid)
        if s.state(now) == "expired":
            raise SilenceError(f"silence {sid} already expired")
        self._expire(s, now)
        self._save()
        return self._by_id[sid]

    def mutes(self, labels: Mapping[str, str]) -> list[str]:
        """Ids of the active silences that match ``labels``."""
        now = self._clock.now()
        return [s.id for s in self._by_id.values() if s.state(now) == "active" and s.matches(labels)]

    def record_muted(self, sid: str, fingerprint: str) -> None:
        """Remembers that ``sid`` muted an alert (kept for ``expire_on_resolve`` silences only; saved
        to disk by ``save_if_dirty``, not here: a silence over 10k alerts must not write 10k times)."""
        s = self._by_id.get(sid)
        if s is not None and s.expire_on_resolve and fingerprint not in s.muted:
            self._by_id[sid] = replace(s, muted=s.muted | {fingerprint})
            self._dirty = True

    def save_if_dirty(self) -> None:
        if self._dirty:
            self._save()

    def expire_resolved(self, firing: Set[str]) -> list[str]:
        """Expires the active ``expire_on_resolve`` silences none of whose muted alerts still fires."""
        now = self._clock.now()
        done = []
        for s in list(self._by_id.values()):
            if s.expire_on_resolve and s.state(now) == "active" and s.muted and not (s.muted & firing):
                self._expire(s, now)
                done.append(s.id)
        if done:
            self._save()
        return done

    def gc(self) -> int:
        now = self._clock.now()
        old = [sid for sid, s in self._by_id.items() if s.state(now) == "expired" and s.ends_at + self._retention < now]
        for sid in old:
            del self._by_id[sid]
        if old:
            with contextlib.suppress(OSError):
                self._save()
        return len(old)
