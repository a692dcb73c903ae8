"""The federated fit's server side: one mapping from the sites' mappings (their moments are
summed with :class:`~fedfleet.traffic.preprocess.scaling.Moments` addition); flows never leave
their sites."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedfleet.errors import DataError
from fedfleet.traffic.preprocess.kinds import ColumnKind


@dataclass(frozen=True)
class SiteMapping:
    """What one site's ``fit_mapping`` learnt: its columns, their kinds and nominal values."""

    columns: list[str]
    kinds: dict[str, ColumnKind]
    categories: dict[str, list[str]]


def merge_site_mappings(parts: Sequence[SiteMapping]) -> SiteMapping:
    """The union of the sites' mappings: same columns and kinds required, categories merged.

    Raises
    ------
    DataError
        When there are no sites, or they saw different columns or disagree on a kind.
    """
    if not parts:
        raise DataError("no sites to fit the preprocessing on")
    first = parts[0]
    for part in parts[1:]:
        if part.columns != first.columns:
            raise DataError("sites have different flow columns; align their schemas first")
        differing = [name for name in first.kinds if part.kinds.get(name) != first.kinds[name]]
        if differing or len(part.kinds) != len(first.kinds):
            raise DataError(f"sites disagree on the kind of column(s) {', '.join(differing)}; "
                            "declare them in the spec's categorical list")
    categories = {name: sorted({value for part in parts for value in part.categories[name]})
                  for name in first.categories}
    return SiteMapping(list(first.columns), dict(first.kinds), categories)

