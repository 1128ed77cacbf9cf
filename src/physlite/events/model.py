"""An opened event source: its reader, schema and hash -> container map, ready to make events of any range.

Example:
    >>> model = open_model("DAOD_PHYSLITE_21.2.108.0.art.pool.root")   # doctest: +SKIP
    >>> model.key_map_source                                              # doctest: +SKIP
    'EventFormat'
    >>> for events in iterate(["a.root", "b.root"], step_size=10_000):    # doctest: +SKIP
    ...     print(len(events))
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import awkward as ak

from physlite.errors import PhysliteError
from physlite.events.eventformat import computed_key_map, event_format_of
from physlite.events.factory import EventFactory, container_classes
from physlite.events.schema import Schema
from physlite.events.source import ChainReader, open_reader, source_list


@dataclass
class EventModel:
    """A reader with its schema and ElementLink key map."""

    reader: Any
    schema: Schema
    key_map: dict[int, str]
    key_map_source: str  # "EventFormat", "computed" or "EventFormat+computed"
    where: str

    @property
    def num_entries(self) -> int:
        return int(self.reader.num_entries)

    def factory(self, entry_start: int, entry_stop: int, *, typetracer: bool = False) -> EventFactory:
        return EventFactory(
            self.reader,
            self.schema,
            self.key_map,
            entry_start,
            entry_stop,
            where=self.where,
            typetracer=typetracer,
        )

    def close(self) -> None:
        close = getattr(self.reader, "close", None)
        if close is not None:
            close()


def _schema(reader: Any, where: str, collections: Iterable[str] | None) -> Schema:
    typenames = {}
    for name in reader.keys():
        if "Aux" not in name:
            continue
        try:
            typenames[name] = reader.typename(name)
        except PhysliteError:
            continue
    schema = Schema.from_branches(typenames)
    if not schema.collections:
        raise PhysliteError(f"{where}: no xAOD collections (Aux./AuxDyn. branches) in CollectionTree")
    if collections is not None:
        wanted = list(collections)
        unknown = [c for c in wanted if c not in schema.collections]
        if unknown:
            raise PhysliteError(
                f"{where}: no collection named {', '.join(unknown)} (have e.g. "
                f"{', '.join(list(schema.collections)[:8])})"
            )
        schema.collections = {c: schema.collections[c] for c in wanted}
    return schema


def _key_map(reader: Any, schema: Schema) -> tuple[dict[int, str], str]:
    """Hash -> container from the files' EventFormat (read through each file's own source, remote ones
    included), completed by hashes computed from container names for files without one."""
    computed = {h: name for h, (name, _) in computed_key_map(container_classes(reader, schema)).items()}
    from_files: dict[int, str] = {}
    complete = True
    for one in getattr(reader, "readers", [reader]):
        found = event_format_of(one)
        if found is None:
            complete = False
            continue
        from_files.update({h: name for h, (name, _) in found.items()})
    if not from_files:
        return computed, "computed"
    merged = dict(computed)
    merged.update(from_files)
    return merged, "EventFormat" if complete else "EventFormat+computed"


def open_model(source: Any, collections: Iterable[str] | None = None, **options: Any) -> EventModel:
    """Open one source or several (chained) and prepare their schema and key map; `options` go to each file's
    source (e.g. ``token``)."""
    sources = source_list(source)
    readers = [open_reader(s, **options) for s in sources]
    reader = readers[0] if len(readers) == 1 else ChainReader(readers, sources)
    where = (
        os.fspath(sources[0]) if len(sources) == 1 else f"{len(sources)} files ({os.fspath(sources[0])}, ...)"
    )
    schema = _schema(reader, where, collections)
    key_map, key_map_source = _key_map(reader, schema)
    return EventModel(reader, schema, key_map, key_map_source, where)


def iterate(
    source: Any, step_size: int = 100_000, collections: Iterable[str] | None = None
) -> Iterator[ak.Array]:
    """Lazy events of each file in chunks of at most ``step_size`` entries.

    Example:
        >>> sum(len(chunk) for chunk in iterate("PHYSLITE_example.root", step_size=30))  # doctest: +SKIP
        100
    """
    if step_size <= 0:
        raise PhysliteError(f"step_size must be positive, not {step_size}")
    for one in source_list(source):
        # not closed here: lazy chunks read from the file whenever they are touched, also after the loop; the
        # file closes when the last chunk of it is gone
        model = open_model(one, collections=collections)
        for start in range(0, model.num_entries, step_size):
            yield model.factory(start, min(start + step_size, model.num_entries)).events()
