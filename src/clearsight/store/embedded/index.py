"""In-memory inverted label index of one tenant: label name -> value -> posting list of series ids.

Posting lists are ``array('I')`` of series ids in ascending order (ids are allocated monotonically,
so appending keeps them sorted). Matchers are resolved against the *distinct values* of a label,
never against series, and combined as sorted numpy arrays.

Prometheus semantics: a matcher sees the empty string for a series that lacks the label, so a
matcher that matches "" also selects every series without the label.

Not thread-safe by itself: the store guards every call with its index lock, and every array a
method returns is a fresh copy (posting arrays grow while readers run).

Regex matchers test every distinct value of their label (a few microseconds each through re2);
dashboards send the same selectors again and again, so the values a regex matcher accepted are
remembered per (label, type, pattern) together with the label's value-set version, which every
new or removed value of that label bumps: an entry is used only while the values are the same.

The label listings (``/api/v1/labels``, label values) read the sorted label names and the sorted
values of a label, kept once computed (the names until a name appears or goes, a label's values
under the same version as the regex cache), and how many series hold a name or a pair (the length
of its posting list). ``generation`` changes at every added or removed series (a process-wide
counter, so an index rebuilt on reload never repeats one): what was computed from a selection of
this index holds while it is unchanged (label_listing.py).
"""

from __future__ import annotations

import itertools
import re
from array import array
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from clearsight.model.labels import Labels
from clearsight.model.matchers import Matcher, MatchType

IdArray = npt.NDArray[np.uint32]

_EMPTY_IDS: IdArray = np.zeros(0, dtype=np.uint32)
# A regex made only of literal alternatives ("a|b|c") is answered by dictionary lookups.
_LITERAL_ALTERNATION = re.compile(r"[A-Za-z0-9_:\-/ ,@]+(?:\|[A-Za-z0-9_:\-/ ,@]+)*")
# Regex matchers whose accepted values are remembered, per tenant index (cleared when full).
MATCH_CACHE_ENTRIES = 1024
_GENERATIONS = itertools.count(1)


def _ids(a: array[int]) -> IdArray:
    return np.array(a, dtype=np.uint32)


def sorted_unique(a: IdArray) -> IdArray:
    """Sorted distinct ids. (``np.unique`` takes ~1.5 s for 1.7M uint32 on numpy 2.4 here; a sort
    plus a neighbour comparison takes ~30 ms.)"""
    if a.size < 2:
        return a
    s = np.sort(a)
    keep = np.empty(s.shape[0], dtype=np.bool_)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    out: IdArray = s[keep]
    return out


def _union(arrays: list[IdArray]) -> IdArray:
    if not arrays:
        return _EMPTY_IDS
    if len(arrays) == 1:
        return arrays[0]
    return sorted_unique(np.concatenate(arrays))


def _member(sorted_ids: IdArray, probe: IdArray) -> npt.NDArray[np.bool_]:
    """For each id of ``probe``: whether it is in ``sorted_ids`` (sorted, unique)."""
    if sorted_ids.size == 0:
        return np.zeros(probe.shape[0], dtype=np.bool_)
    pos = np.searchsorted(sorted_ids, probe)
    pos[pos >= sorted_ids.size] = sorted_ids.size - 1
    hit: npt.NDArray[np.bool_] = sorted_ids[pos] == probe
    return hit


class TenantIndex:
    """The label index of one tenant."""

    def __init__(self) -> None:
        self.all_ids: array[int] = array("I")
        self.postings: dict[str, dict[str, array[int]]] = {}
        self.with_label: dict[str, array[int]] = {}
        # label name -> version of its value set; (name, type, pattern) -> (version, values)
        self._versions: dict[str, int] = {}
        self._matched: dict[tuple[str, MatchType, str], tuple[int, list[str]]] = {}
        # sorted label names (None: to compute); label name -> (its version, its sorted values)
        self._names_sorted: list[str] | None = None
        self._values_sorted: dict[str, tuple[int, list[str]]] = {}
        self.generation = next(_GENERATIONS)

    def __len__(self) -> int:
        return len(self.all_ids)

    def add(self, series_id: int, labels: Labels) -> None:
        """Adds a series; ids must be added in ascending order."""
        self.all_ids.append(series_id)
        self.generation = next(_GENERATIONS)
        for name, value in labels:
            values = self.postings.get(name)
            if values is None:
                values = self.postings[name] = {}
                self.with_label[name] = array("I")
                self._names_sorted = None
            plist = values.get(value)
            if plist is None:
                plist = values[value] = array("I")
                self._versions[name] = self._versions.get(name, 0) + 1
            plist.append(series_id)
            self.with_label[name].append(series_id)

    def remove(self, dead: IdArray, dead_labels: Iterable[Labels]) -> None:
        """Removes the series ``dead`` (sorted) whose label sets are ``dead_labels``."""
        if dead.size == 0:
            return
        touched: set[tuple[str, str]] = set()
        for labels in dead_labels:
            touched.update(labels)
        self.generation = next(_GENERATIONS)
        self.all_ids = _filtered(self.all_ids, dead)
        for name in {n for n, _ in touched}:
            self._versions[name] = self._versions.get(name, 0) + 1
            self.with_label[name] = _filtered(self.with_label[name], dead)
            if not self.with_label[name]:
                del self.with_label[name]
                del self.postings[name]
                self._values_sorted.pop(name, None)
                self._names_sorted = None
        for name, value in touched:
            values = self.postings.get(name)
            if values is None or value not in values:
                continue
            kept = _filtered(values[value], dead)
            if kept:
                values[value] = kept
            else:
                del values[value]

    # --- reads -----------------------------------------------------------------------------------

    def all(self) -> IdArray:
        return _ids(self.all_ids)

    def select(self, matchers: Sequence[Matcher]) -> IdArray:
        """Sorted ids of the series matching all matchers (all series when there are none)."""
        positives: list[IdArray] = []
        negatives: list[IdArray] = []
        for m in matchers:
            ids, negated = self._resolve(m)
            if negated:
                negatives.append(ids)
            else:
                if ids.size == 0:
                    return _EMPTY_IDS
                positives.append(ids)
        if positives:
            positives.sort(key=lambda a: a.shape[0])
            base = positives[0]
            for other in positives[1:]:
                base = base[_member(other, base)]
                if base.size == 0:
                    return _EMPTY_IDS
        else:
            base = self.all()
        for neg in negatives:
            if base.size == 0:
                break
            base = base[~_member(neg, base)]
        return base

    def _resolve(self, m: Matcher) -> tuple[IdArray, bool]:
        """Ids for one matcher: ``(ids, False)`` means the matching series are ``ids``;
        ``(ids, True)`` means they are all series except ``ids``."""
        values = self.postings.get(m.name, {})
        if m.type is MatchType.EQ and m.value != "":
            plist = values.get(m.value)
            return (_ids(plist) if plist is not None else _EMPTY_IDS), False
        if m.type is MatchType.NEQ and m.value != "":
            plist = values.get(m.value)
            return (_ids(plist) if plist is not None else _EMPTY_IDS), True
        if m.type in (MatchType.EQ, MatchType.NEQ):  # `name=""` / `name!=""`
            present = self.with_label.get(m.name)
            ids = _ids(present) if present is not None else _EMPTY_IDS
            return ids, m.type is MatchType.EQ
        # Regex matchers.
        if m.value in (".*", ".*?"):
            return _EMPTY_IDS, m.type is MatchType.RE  # =~".*" matches all, !~".*" none
        if m.value in (".+", ".+?"):
            present = self.with_label.get(m.name)
            ids = _ids(present) if present is not None else _EMPTY_IDS
            return ids, m.type is MatchType.NRE
        if m.matches_empty():
            # Selects series lacking the label too: return the complement of the non-matching values.
            miss = [_ids(values[v]) for v in self._values_where(m, values, False)]
            return _union(miss), True
        if _LITERAL_ALTERNATION.fullmatch(m.value) and m.type is MatchType.RE:
            hits = [values[v] for v in set(m.value.split("|")) if v in values]
            return _union([_ids(p) for p in hits]), False
        hit = [_ids(values[v]) for v in self._values_where(m, values, True)]
        return _union(hit), False

    def _values_where(self, m: Matcher, values: dict[str, array[int]], accepted: bool) -> list[str]:
        """The values of ``m``'s label that ``m`` accepts (``accepted``) or refuses, remembered
        while the label's value set is unchanged."""
        version = self._versions.get(m.name, 0)
        key = (m.name, m.type, m.value)
        found = self._matched.get(key)
        if found is None or found[0] != version:
            if len(self._matched) >= MATCH_CACHE_ENTRIES:
                self._matched.clear()
            found = (version, [v for v in values if m.matches(v)])
            self._matched[key] = found
        if accepted:
            return found[1]
        hit = set(found[1])
        return [v for v in values if v not in hit]

    def names_sorted(self) -> list[str]:
        """Every label name, sorted: a list shared with later calls (not to be changed)."""
        if self._names_sorted is None:
            self._names_sorted = sorted(self.with_label)
        return self._names_sorted

    def values_sorted(self, name: str) -> list[str]:
        """Every value of label ``name``, sorted: a list shared with later calls (not to be changed)."""
        values = self.postings.get(name)
        if values is None:
            return []
        version = self._versions.get(name, 0)
        found = self._values_sorted.get(name)
        if found is None or found[0] != version:
            found = self._values_sorted[name] = (version, sorted(values))
        return found[1]

    def name_count(self, name: str) -> int:
        """How many series have label ``name``."""
        present = self.with_label.get(name)
        return len(present) if present is not None else 0

    def value_count(self, name: str, value: str) -> int:
        """How many series have ``name="value"``."""
        plist = self.postings.get(name, {}).get(value)
        return len(plist) if plist is not None else 0

    def name_counts(self, ids: IdArray) -> dict[str, int]:
        """Label name -> how many of ``ids`` (sorted, unique) have it (names none of them has left out)."""
        return _counts(self.with_label.items(), ids)

    def value_counts(self, name: str, ids: IdArray) -> dict[str, int]:
        """Value of ``name`` -> how many of ``ids`` (sorted, unique) have it (values none of them has left out)."""
        return _counts(self.postings.get(name, {}).items(), ids)

    def label_names(self, ids: IdArray | None) -> list[str]:
        """Names of labels present on any of ``ids`` (all series when None), sorted."""
        if ids is None:
            return sorted(self.with_label)
        out = []
        for name, present in self.with_label.items():
            if _member(_ids(present), ids).any():
                out.append(name)
        out.sort()
        return out

    def label_values(self, name: str, ids: IdArray | None) -> list[str]:
        """Values of ``name`` on any of ``ids`` (all series when None), sorted."""
        values = self.postings.get(name, {})
        if ids is None:
            return sorted(values)
        out = []
        for value, plist in values.items():
            if _member(ids, _ids(plist)).any():
                out.append(value)
        out.sort()
        return out


def select_sets(idx: TenantIndex, matcher_sets: Sequence[Sequence[Matcher]]) -> IdArray:
    """Sorted ids of the series matching any of ``matcher_sets`` (every series when there is none)."""
    if not matcher_sets:
        return idx.all()
    if len(matcher_sets) == 1:
        return idx.select(matcher_sets[0])
    return sorted_unique(np.concatenate([idx.select(ms) for ms in matcher_sets]))


def _counts(postings: Iterable[tuple[str, array[int]]], ids: IdArray) -> dict[str, int]:
    """Key -> the size of its posting list's intersection with ``ids``, where not empty (the
    smaller of the two is searched in the other)."""
    out: dict[str, int] = {}
    k = ids.shape[0]
    for key, plist in postings:
        p = _ids(plist)
        c = int(np.count_nonzero(_member(ids, p) if p.shape[0] <= k else _member(p, ids)))
        if c:
            out[key] = c
    return out


def _filtered(a: array[int], dead: IdArray) -> array[int]:
    arr = _ids(a)
    kept = arr[~_member(dead, arr)]
    return array("I", kept.tobytes())
