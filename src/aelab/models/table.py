"""The columns of a table of metrics rows: the measures of every model (:mod:`.measures`) and those of every
model family (:data:`aelab.models.FAMILIES`), in the order the report and the CLI show them."""

from __future__ import annotations

from aelab.models.families import FAMILIES
from aelab.models.measures import IDENTITY, OPTIONAL, QUALITY, SAMPLES, TAIL, Measure


def family_measures() -> list[Measure]:
    """Every family's own measures, in family order, each key once."""
    seen: dict[str, Measure] = {}
    for cls in FAMILIES.values():
        for m in cls.measures:
            seen.setdefault(m.key, m)
    return list(seen.values())


def columns(rows: list[dict], table: str | None = None) -> list[Measure]:
    """The columns of a table of these rows: identity and quality, the optional and family measures some row
    has, then code statistics and timing. ``table`` ``main`` or one of :data:`~aelab.models.measures.SIDE_TABLES`
    keeps the measures of that table (a side table with the model name in front); None keeps all (the report's
    one table)."""

    def present(measures) -> list[Measure]:
        return [m for m in measures if any(r.get(m.key) is not None for r in rows)]

    extra = present(OPTIONAL) + present(family_measures()) + present(SAMPLES)
    if table is not None and table != "main":
        return [IDENTITY[0], *[m for m in extra if m.table == table]]
    if table == "main":
        extra = [m for m in extra if m.table == "main"]
    return [*IDENTITY, *QUALITY, *extra, *TAIL]
