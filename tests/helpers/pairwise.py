"""All-pairs test cases: every value of each dimension meets every value of every other one.

A greedy generator in the spirit of AETG (Cohen et al. 1997): rows are completed one dimension at
a time, each time with the value that covers the most pairs not yet covered; among those, the one
whose pairs ran least often so far, so that values keep mixing once every pair is covered; then
the first such value, so the result is the same on every run. Rows given as ``seed`` (for instance a full
product of the dimensions that must be covered in full) are completed first; then rows are added,
each starting from the first pair still missing, until every allowed pair is covered.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from itertools import combinations

Row = dict[str, Hashable]
Pair = tuple[tuple[str, Hashable], tuple[str, Hashable]]


def _always(row: Mapping[str, Hashable]) -> bool:
    return True


def pairs_of(row: Mapping[str, Hashable], names: Sequence[str]) -> list[Pair]:
    """The pairs a (possibly partial) row covers, each ordered as the dimensions are."""
    present = [name for name in names if name in row]
    return [((a, row[a]), (b, row[b])) for a, b in combinations(present, 2)]


def required_pairs(dimensions: Mapping[str, Sequence[Hashable]], valid: Callable[[Mapping[str, Hashable]], bool] = _always) -> list[Pair]:
    """Every pair of values of two dimensions that ``valid`` allows, in dimension and value order."""
    names = list(dimensions)
    return [((a, va), (b, vb)) for a, b in combinations(names, 2) for va in dimensions[a] for vb in dimensions[b] if valid({a: va, b: vb})]


def uncovered(
    dimensions: Mapping[str, Sequence[Hashable]], rows: Iterable[Mapping[str, Hashable]], valid: Callable[[Mapping[str, Hashable]], bool] = _always
) -> list[Pair]:
    """The allowed pairs that none of ``rows`` covers."""
    names = list(dimensions)
    covered = {pair for row in rows for pair in pairs_of(row, names)}
    return [pair for pair in required_pairs(dimensions, valid) if pair not in covered]


def all_pairs(
    dimensions: Mapping[str, Sequence[Hashable]],
    seed: Iterable[Mapping[str, Hashable]] = (),
    valid: Callable[[Mapping[str, Hashable]], bool] = _always,
) -> list[Row]:
    """Rows (dicts over every dimension) that cover every pair ``valid`` allows.

    ``valid`` is asked about partial rows too, so a constraint must hold on whichever of its
    dimensions a row has so far (``lambda r: r.get("a") != r.get("b")`` for "a and b differ").
    The rows of ``seed`` come first, in order, with their given values kept.
    """
    names = list(dimensions)
    required = required_pairs(dimensions, valid)
    # How often each pair has been run; the pairs at 0 are still missing.
    counts = dict.fromkeys(required, 0)

    def score(row: Mapping[str, Hashable], name: str, value: Hashable) -> tuple[int, int]:
        """(pairs newly covered, minus how often its pairs ran already): more of the first, then spread evenly."""
        seen = [counts.get(pair, 0) for pair in pairs_of({**row, name: value}, names) if name in (pair[0][0], pair[1][0])]
        return sum(n == 0 for n in seen), -sum(seen)

    def complete(start: Mapping[str, Hashable]) -> Row:
        row = dict(start)
        if not valid(row):
            raise ValueError(f"row {row} breaks the constraint")
        for name in names:
            if name in row:
                continue
            fitting = [value for value in dimensions[name] if valid({**row, name: value})]
            if not fitting:
                raise ValueError(f"no value of {name!r} fits {row}")
            row[name] = max(fitting, key=lambda value: score(row, name, value))  # max keeps the first of equals
        row = {name: row[name] for name in names}
        for pair in pairs_of(row, names):
            counts[pair] = counts.get(pair, 0) + 1
        return row

    rows = [complete(start) for start in seed]
    while missing := [pair for pair in required if counts[pair] == 0]:
        (a, va), (b, vb) = missing[0]
        rows.append(complete({a: va, b: vb}))
    return rows
