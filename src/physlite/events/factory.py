"""Build the events array of one range of entries: an awkward form whose buffers read branches on first use.

Every buffer of the form is a callable (awkward "virtual" buffers): a field's data and inner offsets come from
its own branch, read the first time the field is touched. A collection's offsets (objects per event) come from
the branch of the field touched first (the array classes pass that field on as a hint), else from a branch
already read, else from the collection's smallest plain variable; every later branch of the collection is
checked against them. Each ElementLink variable ``x`` has a hidden sibling ``_idx_x`` holding, per link, the
position of the target object in the flat content of the target collection (``slot << 40 | position``, -1
for none); the link properties of :mod:`physlite.events.behavior` turn it into the target records.

Example:
    >>> factory = EventFactory(reader, schema, key_map, 0, reader.num_entries)  # doctest: +SKIP
    >>> events = factory.events()                                                # doctest: +SKIP
    >>> events.Electrons.pt                                                      # reads one branch  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import awkward as ak
import numpy as np

from physlite.errors import CorruptDataError
from physlite.events import buffers, links, types
from physlite.events.behavior import FACTORY_ATTR, build_behavior, union_record_name
from physlite.events.schema import CollectionSpec, FieldSpec, Schema
from physlite.events.sgkey import element_class

PION_MASS = 139.57039  # MeV: the mass ATLAS assigns to track particles
MUON_MASS = 105.6583755  # MeV

# Preferred target of a link whose data point nowhere in a chunk, by element class (keeps types stable).
_DEFAULT_TARGETS = {
    "xAOD::TrackParticle": ["InDetTrackParticles", "GSFTrackParticles"],
    "xAOD::TruthParticle": ["TruthParticles", "TruthBoson", "TruthBosonsWithDecayParticles"],
    "xAOD::TruthVertex": ["TruthVertices", "TruthBosonsWithDecayVertices"],
    "xAOD::CaloCluster": ["egammaClusters"],
    "xAOD::Vertex": ["PrimaryVertices"],
    "xAOD::IParticle": ["InDetTrackParticles"],
    "xAOD::Jet": ["Jets"],
}


class Computed:
    """A field computed from other fields of the same collection (e.g. a track's pt from qOverP and theta)."""

    def __init__(self, sources: list[str], function: Callable[..., np.ndarray]):
        self.sources = sources
        self.function = function


def computed_fields(spec: CollectionSpec) -> dict[str, Computed]:
    """The computed fields of a collection: track-particle kinematics, the muon mass."""
    names = set(spec.fields)
    out: dict[str, Computed] = {}
    if spec.singleton:
        return out
    if {"qOverP", "theta", "phi"} <= names and "pt" not in names:
        out["pt"] = Computed(
            ["qOverP", "theta"],
            lambda q, t: np.abs(np.sin(t.astype(np.float64)) / q).astype(np.float32),
        )
        out["eta"] = Computed(
            ["theta"], lambda t: (-np.log(np.tan(t.astype(np.float64) / 2))).astype(np.float32)
        )
        out["m"] = Computed(["theta"], lambda t: np.full(len(t), PION_MASS, dtype=np.float32))
    if spec.name == "Muons" and {"pt", "eta", "phi"} <= names and "m" not in names:
        out["m"] = Computed(["pt"], lambda pt: np.full(len(pt), MUON_MASS, dtype=np.float32))
    return out


class EventFactory:
    """The lazy events of entries ``[entry_start, entry_stop)`` of a reader."""

    def __init__(
        self,
        reader: Any,
        schema: Schema,
        key_map: Mapping[int, str],
        entry_start: int,
        entry_stop: int,
        *,
        where: str = "",
        typetracer: bool = False,
    ):
        self.reader = reader
        self.schema = schema
        self.key_map = dict(key_map)  # hash -> container name
        self.entry_start = entry_start
        self.entry_stop = entry_stop
        self.length = entry_stop - entry_start
        self.where = where
        self.typetracer = typetracer  # a data-less array of the same type (dask's meta)
        self.branches_requested: set[str] = set()
        self._by_container = schema.by_container()
        self._slots = {name: i for i, name in enumerate(schema.collections)}
        self.schema_names = list(schema.collections)
        self._computed = {name: computed_fields(spec) for name, spec in schema.collections.items()}
        self._cache: dict[str, dict[str, np.ndarray]] = {}
        self._offsets: dict[str, np.ndarray] = {}
        self._hints: dict[str, str] = {}
        self._links: dict[tuple[str, str], tuple[np.ndarray, list[str]]] = {}
        self._container: dict[str, Callable[[], np.ndarray]] = {}
        field_names = {
            name: set(spec.fields) | set(self._computed[name]) for name, spec in schema.collections.items()
        }
        self.behavior = build_behavior(list(schema.collections.values()), field_names)
        self.form = self._events_form()
        self._layout: ak.contents.Content | None = None

    # ---------------------------------------------------------------- reading
    def branch_buffers(self, branch: str) -> dict[str, np.ndarray]:
        """The buffers of one branch for this range of entries (read once)."""
        if branch not in self._cache:
            self.branches_requested.add(branch)
            array = self.reader.arrays([branch], self.entry_start, self.entry_stop)[branch]
            if len(array) != self.length:
                raise CorruptDataError(
                    f"{self.where}: branch {branch} gave {len(array)} entries, expected {self.length}"
                )
            self._cache[branch] = buffers.flatten(array)
        return self._cache[branch]

    def prefetch(self, branches: list[str]) -> None:
        """Read several branches in one call of the reader (eager mode)."""
        todo = [b for b in dict.fromkeys(branches) if b not in self._cache]
        if not todo:
            return
        self.branches_requested.update(todo)
        arrays = self.reader.arrays(todo, self.entry_start, self.entry_stop)
        for branch in todo:
            self._cache[branch] = buffers.flatten(arrays[branch])

    def hint(self, collection: str, field: str) -> None:
        """Take ``collection``'s offsets from the branch of ``field`` if they are not known yet."""
        if collection in self._offsets or collection not in self.schema.collections:
            return
        branch = self._branch_of(collection, field)
        if branch is not None:
            self._hints[collection] = branch

    def _branch_of(self, collection: str, field: str) -> str | None:
        spec = self.schema.collections[collection]
        if field.startswith("_idx_"):
            field = field[len("_idx_") :]
        if field in spec.fields:
            return spec.fields[field].branch
        computed = self._computed[collection].get(field)
        if computed is not None:
            return spec.fields[computed.sources[0]].branch
        return None

    def _default_branch(self, spec: CollectionSpec) -> str:
        plain = [f for f in spec.fields.values() if isinstance(f.type, types.Primitive)]
        for preferred in ("pt", "phi", "m", "e"):
            if preferred in spec.fields and spec.fields[preferred] in plain:
                return spec.fields[preferred].branch
        return (plain or list(spec.fields.values()))[0].branch

    def collection_offsets(self, collection: str) -> np.ndarray:
        """Objects per event of a collection, as offsets from 0 (read from one of its branches)."""
        if collection not in self._offsets:
            spec = self.schema.collections[collection]
            branch = self._hints.pop(collection, None)
            if branch is None:
                read = [f.branch for f in spec.fields.values() if f.branch in self._cache]
                branch = read[0] if read else self._default_branch(spec)
            self._offsets[collection] = self.branch_buffers(branch)[".offsets"]
        return self._offsets[collection]

    def _checked(self, spec: CollectionSpec, branch: str) -> dict[str, np.ndarray]:
        got = self.branch_buffers(branch)
        if not spec.singleton:
            offsets = self.collection_offsets(spec.name)
            if got[".offsets"] is not offsets and not np.array_equal(got[".offsets"], offsets):
                raise CorruptDataError(
                    f"{self.where}: branch {branch} has other object counts than collection {spec.name}"
                )
        return got

    def _leaf(self, spec: CollectionSpec, branch: str, path: str, dtype: str) -> np.ndarray:
        data = self._checked(spec, branch).get(path)
        if data is None:
            raise CorruptDataError(
                f"{self.where}: branch {branch} does not have the type its name says ({path})"
            )
        return data if data.dtype == np.dtype(dtype) else data.astype(dtype)

    def _computed_leaf(self, spec: CollectionSpec, computed: Computed) -> np.ndarray:
        args = [
            self._leaf(spec, spec.fields[s].branch, ".0.data", spec.fields[s].type.dtype)
            for s in computed.sources
        ]
        return computed.function(*args)

    # ---------------------------------------------------------------- links
    def link_index(self, collection: str, field: str) -> np.ndarray:
        """Per link of ``collection.field``: ``slot << 40 | position`` of its target (-1 for none), where
        ``slot`` numbers the collections of the schema and ``position`` is the index in its flat content."""
        return self._resolve_links(collection, field)[0]

    def link_targets(self, collection: str, field: str) -> list[str]:
        """The collections that ``collection.field`` points to in this range (a default one if none)."""
        if self.typetracer:
            default = self._default_target(self.schema.collections[collection].fields[field])
            return [default] if default else []
        return self._resolve_links(collection, field)[1]

    def _resolve_links(self, collection: str, field: str) -> tuple[np.ndarray, list[str]]:
        key = (collection, field)
        if key in self._links:
            return self._links[key]
        spec = self.schema.collections[collection]
        fspec = spec.fields[field]
        got = self._checked(spec, fspec.branch)
        levels = (0 if spec.singleton else 1) + types.link_depth(fspec.type)
        leaf = "".join([".0"] * levels)
        keys = got[leaf + ".m_persKey.data"]
        index = got[leaf + ".m_persIndex.data"].astype(np.int64)
        event_of = np.arange(self.length, dtype=np.int64)
        for level in range(levels):
            event_of = np.repeat(event_of, np.diff(got["".join([".0"] * level) + ".offsets"]))
        by_key = {}
        for value in np.unique(keys):
            target = self._target_collection(int(value))
            if target is not None:  # else: empty link, or a container this file does not hold -> None
                by_key[int(value)] = (self._slots[target], self.collection_offsets(target))
        result = links.encode(keys, index, event_of, by_key)
        targets = list(dict.fromkeys(self.schema_names[slot] for slot, _ in by_key.values()))
        if not targets:
            default = self._default_target(fspec)
            targets = [default] if default else []
        self._links[key] = (result, sorted(targets, key=self._slots.__getitem__))
        return self._links[key]

    def _target_collection(self, key: int) -> str | None:
        if key == 0:
            return None
        container = self.key_map.get(key)
        spec = self._by_container.get(container) if container else None
        if spec is None or spec.singleton:
            return None
        return spec.name

    def _default_target(self, fspec: FieldSpec) -> str | None:
        t = fspec.type
        while isinstance(t, types.List):
            t = t.content
        candidates = _DEFAULT_TARGETS.get(t.target or "", [])
        for name in candidates:
            if name in self.schema.collections and not self.schema.collections[name].singleton:
                return name
        for spec in self.schema.collections.values():
            if not spec.singleton and spec.element_class and spec.element_class == t.target:
                return spec.name
        return None

    def target_content(self, collection: str) -> ak.contents.Content:
        """The flat records of a whole collection of this range (what link positions index)."""
        if not self.typetracer:
            self.collection_offsets(collection)
        return self.layout().content(collection).content

    def resolve(self, array: ak.Array, field: str) -> ak.Array:
        """The target objects of link field ``field`` for the (possibly sliced) objects in ``array``."""
        positions = array["_idx_" + field]
        targets: set[str] = set()
        for collection in links.record_names(array.layout):
            if collection in self.schema.collections and field in self.schema.collections[collection].fields:
                targets.update(self.link_targets(collection, field))
        ordered = sorted(targets, key=self._slots.__getitem__)
        contents = [self.target_content(t) for t in ordered]
        tags = np.full(len(self._slots), -1, dtype=np.int64)
        for tag, name in enumerate(ordered):
            tags[self._slots[name]] = tag
        common = (
            set.intersection(*(set(self.schema.collections[t].fields) for t in ordered)) if ordered else set()
        )
        union_name = union_record_name(common)

        def to_targets(layout, **kwargs):
            if isinstance(layout, ak.contents.NumpyArray):
                if self.typetracer:
                    return links.select_typetracer(layout, contents)
                return links.select(np.asarray(layout.data, dtype=np.int64), contents, tags, union_name)
            return None

        return ak.transform(to_targets, positions, behavior=self.behavior, attrs=array.attrs)

    # ---------------------------------------------------------------- form
    def _register(self, key: str, function: Callable[[], np.ndarray]) -> str:
        self._container[key] = function
        return key

    def _node(self) -> str:
        return f"n{len(self._container)}"

    def _type_form(self, spec: CollectionSpec, fspec: FieldSpec, t: types.Type, path: str) -> dict:
        key = self._node()
        if isinstance(t, types.Primitive):
            self._register(f"{key}-data", lambda: self._leaf(spec, fspec.branch, path + ".data", t.dtype))
            return {"class": "NumpyArray", "primitive": t.dtype, "form_key": key}
        if isinstance(t, types.List):
            self._register(f"{key}-offsets", lambda: self._checked(spec, fspec.branch)[path + ".offsets"])
            content = self._type_form(spec, fspec, t.content, path + ".0")
            return {"class": "ListOffsetArray", "offsets": "i64", "content": content, "form_key": key}
        self._register(
            f"{key}-data", lambda: self._leaf(spec, fspec.branch, path + ".m_persKey.data", "uint32")
        )
        key2 = self._node()
        self._register(
            f"{key2}-data", lambda: self._leaf(spec, fspec.branch, path + ".m_persIndex.data", "uint32")
        )
        return {
            "class": "RecordArray",
            "fields": ["m_persKey", "m_persIndex"],
            "contents": [
                {"class": "NumpyArray", "primitive": "uint32", "form_key": key},
                {"class": "NumpyArray", "primitive": "uint32", "form_key": key2},
            ],
            "parameters": {"__record__": "ElementLink"},
        }

    def _index_form(self, spec: CollectionSpec, fspec: FieldSpec, t: types.Type, path: str) -> dict:
        key = self._node()
        if isinstance(t, types.List):
            self._register(f"{key}-offsets", lambda: self._checked(spec, fspec.branch)[path + ".offsets"])
            content = self._index_form(spec, fspec, t.content, path + ".0")
            return {"class": "ListOffsetArray", "offsets": "i64", "content": content, "form_key": key}
        self._register(f"{key}-data", lambda: self.link_index(spec.name, fspec.name))
        return {"class": "NumpyArray", "primitive": "int64", "form_key": key}

    def _collection_form(self, spec: CollectionSpec) -> dict:
        base = "" if spec.singleton else ".0"
        names, contents = [], []
        for fspec in spec.fields.values():
            names.append(fspec.name)
            contents.append(self._type_form(spec, fspec, fspec.type, base))
            if fspec.is_link:
                names.append("_idx_" + fspec.name)
                contents.append(self._index_form(spec, fspec, fspec.type, base))
        for name, computed in self._computed[spec.name].items():
            key = self._node()
            self._register(f"{key}-data", lambda c=computed: self._computed_leaf(spec, c))
            names.append(name)
            contents.append({"class": "NumpyArray", "primitive": "float32", "form_key": key})
        record = {
            "class": "RecordArray",
            "fields": names,
            "contents": contents,
            "parameters": {"__record__": spec.name},
        }
        if spec.singleton:
            return record
        key = self._node()
        self._register(f"{key}-offsets", lambda: self.collection_offsets(spec.name))
        return {"class": "ListOffsetArray", "offsets": "i64", "content": record, "form_key": key}

    def _events_form(self) -> ak.forms.Form:
        names = list(self.schema.collections)
        contents = [self._collection_form(self.schema.collections[n]) for n in names]
        return ak.forms.from_dict({"class": "RecordArray", "fields": names, "contents": contents})

    def layout(self) -> ak.contents.Content:
        if self._layout is None and self.typetracer:
            self._layout = self.form.length_zero_array().to_typetracer(forget_length=True)
        if self._layout is None:
            self._layout = ak.from_buffers(
                self.form, self.length, self._container, highlevel=False, enable_virtualarray_caching=True
            )
        return self._layout

    def events(self) -> ak.Array:
        """The events of this range as an awkward array whose branches are read on first use."""
        return ak.Array(self.layout(), behavior=self.behavior, attrs={FACTORY_ATTR: self})

    def all_branches(self) -> list[str]:
        return [f.branch for spec in self.schema.collections.values() for f in spec.fields.values()]


def container_classes(reader: Any, schema: Schema) -> dict[str, str | None]:
    """The element class of each container of the schema, from the file's interface or Aux branch types."""
    keys = set(reader.keys())
    out: dict[str, str | None] = {}
    for spec in schema.collections.values():
        cls = None
        for candidate in (spec.container, spec.container + "Aux."):
            if candidate in keys:
                try:
                    cls = element_class(reader.typename(candidate))
                except Exception:  # an interface branch the reader cannot describe: try the next source
                    cls = None
                if cls:
                    break
        out[spec.container] = cls or spec.element_class
    return out
