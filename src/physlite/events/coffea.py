"""coffea integration: :class:`PhysliteSchema` for ``coffea.nanoevents.NanoEventsFactory``.

It builds the same collections as coffea's ``PHYSLITESchema`` (so a coffea processor written for it runs
unchanged) and replaces what breaks on real files:

- truth particles have both ``e`` and ``m``; coffea's four-vectors refuse them ("multiple temporal aliases"),
  here their coordinates are fixed to ``px, py, pz, e`` (``parents``/``children`` chains work);
- links resolve through hashes computed from the container names the file holds (no hard-coded table), with
  the key checked: a link into a container the file does not hold (r22 muons into
  ``InDetForwardTrackParticles``), an empty link or an index beyond the target gives None;
- ``Jets.GhostTrack`` resolves to the ghost-associated tracks (the raw links stay in ``jets["GhostTrack"]``).

Links resolve in coffea's virtual and dask modes; in dask mode the link branch is read once when the property is
first used, to learn which collections its keys name (the result's type depends on it).

Example:
    >>> from coffea.nanoevents import NanoEventsFactory
    >>> from physlite.events.coffea import PhysliteSchema
    >>> events = NanoEventsFactory.from_root(
    ...     {"PHYSLITE_example.root": "CollectionTree"}, schemaclass=PhysliteSchema, mode="virtual"
    ... ).events()                                                                   # doctest: +SKIP
    >>> events.TruthElectrons.parents.pdgId                                          # doctest: +SKIP
"""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar

import awkward
import numpy as np
from coffea.nanoevents.methods import physlite as coffea_physlite
from coffea.nanoevents.schemas.physlite import PHYSLITESchema
from coffea.util import dask_property

from physlite.events.behavior import _FourVector
from physlite.events.sgkey import CLIDS, sgkey

behavior: dict = {}
behavior.update(coffea_physlite.behavior)

CONTAINER_PARAMETER = "physlite_container"


@lru_cache(maxsize=64)
def _key_map(collections: tuple[tuple[str, str], ...]) -> dict[int, str]:
    """hash -> collection name, for every (container, CLID) pair: the class of a container is not needed."""
    out: dict[int, str] = {}
    for name, container in collections:
        for clid in CLIDS.values():
            out.setdefault(sgkey(container, clid), name)
    return out


def _collections(events) -> tuple[tuple[str, str], ...]:
    pairs = []
    for name in events.fields:
        container = events[name].layout.purelist_parameter(CONTAINER_PARAMETER)
        pairs.append((name, container or name))
    return tuple(pairs)


def _take(values: np.ndarray, positions: awkward.Array) -> awkward.Array:
    """``values[positions]`` for a (jagged) integer array, keeping its structure."""

    def leaf(layout, **kwargs):
        if isinstance(layout, awkward.contents.NumpyArray):
            return awkward.contents.NumpyArray(values[np.asarray(layout.data)])
        return None

    return awkward.transform(leaf, positions)


def _offsets(target: awkward.Array) -> np.ndarray:
    for field in target.fields:
        column = target[field]
        if column.ndim < 3:
            return np.asarray(column.layout.offsets.data, dtype=np.int64)
    raise ValueError("collection without a per-object variable")


def _present_targets(keys, names: set[str], collections) -> list[tuple[int, str]]:
    key_map = _key_map(collections)
    present = np.unique(awkward.to_numpy(awkward.flatten(keys, axis=None)))
    return [(int(k), key_map[int(k)]) for k in present if int(k) in key_map and key_map[int(k)] in names]


def _resolve_with(obj, link_field: str, targets: list[tuple[int, awkward.Array]]):
    """Resolve ``obj[link_field]`` into the given ``(key, target collection)`` pairs, key and range checked."""
    links = obj[link_field]
    keys = links.m_persKey
    index = awkward.values_astype(links.m_persIndex, np.int64)
    typetracer = awkward.backend(index) == "typetracer"
    eventindex = awkward.broadcast_arrays(obj._eventindex, index)[0]
    result = None
    chosen = None
    for key, target in targets:
        if typetracer:  # dask's meta pass: only the type matters
            valid = keys == key
            position = index
        else:
            offsets = _offsets(target)
            start = _take(offsets[:-1], eventindex)
            count = _take(offsets[1:], eventindex) - start
            valid = (keys == key) & (index < count)
            position = start + index
        resolved = target._apply_global_index(awkward.where(valid, position, -1))
        result = resolved if result is None else awkward.where(valid, resolved, result)
        chosen = valid if chosen is None else chosen | valid
    if result is None:
        return awkward.mask(index, awkward.zeros_like(index, dtype=bool))
    return awkward.mask(result, chosen)


def resolve_link(obj, link_field: str):
    """The objects that ``obj[link_field]`` points to, with the container key checked (None otherwise)."""
    events = obj._events()
    found = _present_targets(obj[link_field].m_persKey, set(events.fields), _collections(events))
    return _resolve_with(obj, link_field, [(key, events[name]) for key, name in found])


class _PartitionLink:
    """Resolve a link field in one partition, given the partitions of its target collections (dask mode)."""

    def __init__(self, link_field: str, keys: list[int], first: bool):
        self.link_field = link_field
        self.keys = keys
        self.first = first

    def __call__(self, obj, *targets):
        out = _resolve_with(obj, self.link_field, list(zip(self.keys, targets, strict=True)))
        return awkward.firsts(out, axis=out.ndim - 1) if self.first else out


def _resolve_dask(dask_array, link_field: str, first: bool):
    """Dask mode: the link branch is read once to learn which collections its keys name, then every partition
    resolves against the partitions of those collections."""
    import dask_awkward

    events = dask_array.attrs["@original_array"]
    collections = tuple(
        (name, events[name]._meta.layout.purelist_parameter(CONTAINER_PARAMETER) or name)
        for name in events.fields
    )
    found = _present_targets(dask_array[link_field].m_persKey.compute(), set(events.fields), collections)
    return dask_awkward.map_partitions(
        _PartitionLink(link_field, [key for key, _ in found], first),
        dask_array,
        *[events[name] for _, name in found],
        label=f"physlite-link-{link_field}",
    )


def _link(field: str, first: bool = False):
    def getter(self):
        out = resolve_link(self, field)
        return awkward.firsts(out, axis=out.ndim - 1) if first else out

    getter.__doc__ = f"The objects {field} points to (None for empty or foreign links)."
    prop = dask_property(getter)

    def dask_getter(self, dask_array):
        return _resolve_dask(dask_array, field, first)

    return prop.dask(dask_getter)


class _TruthCoordinates(_FourVector):
    coordinates = (("px", "py"), "pz", "e")


behavior.update(awkward._util.copy_behaviors("TruthParticle", "PhysliteTruthParticle", behavior))


@awkward.mixin_class(behavior)
class PhysliteTruthParticle(_TruthCoordinates, coffea_physlite.TruthParticle):
    """Truth particle with px, py, pz, e four-vectors and key-checked parents/children."""

    children = _link("childLinks")
    parents = _link("parentLinks")


behavior.update(awkward._util.copy_behaviors("Muon", "PhysliteMuon", behavior))


@awkward.mixin_class(behavior)
class PhysliteMuon(coffea_physlite.Muon):
    """coffea's muon with key-checked track links (``trackParticle`` is the combined track, as in coffea)."""

    trackParticle = _link("combinedTrackParticleLink")
    combinedTrackParticle = _link("combinedTrackParticleLink")
    inDetTrackParticle = _link("inDetTrackParticleLink")
    extrapolatedMuonSpectrometerTrackParticle = _link("extrapolatedMuonSpectrometerTrackParticleLink")
    muonSpectrometerTrackParticle = _link("muonSpectrometerTrackParticleLink")


behavior.update(awkward._util.copy_behaviors("Electron", "PhysliteElectron", behavior))


@awkward.mixin_class(behavior)
class PhysliteElectron(coffea_physlite.Electron):
    """coffea's electron with key-checked track and cluster links."""

    trackParticles = _link("trackParticleLinks")
    trackParticle = _link("trackParticleLinks", first=True)
    caloClusters = _link("caloClusterLinks")


behavior.update(awkward._util.copy_behaviors("Particle", "PhysliteJet", behavior))


@awkward.mixin_class(behavior)
class PhysliteJet(coffea_physlite.Particle):
    """coffea's jet with ``GhostTrack`` resolved to the ghost-associated tracks. In dask mode dask-awkward
    prefers the raw field of that name: ``ghostTracks`` is the same property under a name without a field."""

    GhostTrack = _link("GhostTrack")
    ghostTracks = _link("GhostTrack")


def _vector_classes(name: str, base: str) -> None:
    """coffea's vector methods find projection and momentum classes as attributes of the mixin classes."""
    for kind in ("*", None):
        key = ("*", name) if kind else name
        base_key = ("*", base) if kind else base
        for attribute in ("ProjectionClass2D", "ProjectionClass3D", "MomentumClass"):
            setattr(behavior[key], attribute, getattr(behavior[base_key], attribute))
        behavior[key].ProjectionClass4D = behavior[key]


for _name, _base in (
    ("PhysliteTruthParticle", "TruthParticle"),
    ("PhysliteMuon", "Muon"),
    ("PhysliteElectron", "Electron"),
    ("PhysliteJet", "Particle"),
):
    _vector_classes(_name, _base)


class PhysliteSchema(PHYSLITESchema):
    """coffea's PHYSLITE schema with working truth four-vectors and key-checked links (see module doc)."""

    # coffea's transforms (muon mass, track kinematics) key on its own mixin names: swap the names afterwards
    renamed: ClassVar[dict[str, str]] = {
        "TruthParticle": "PhysliteTruthParticle",
        "Muon": "PhysliteMuon",
        "Electron": "PhysliteElectron",
        "Jets": "PhysliteJet",
    }

    def _build_collections(self, branch_forms):
        contents = super()._build_collections(branch_forms)
        containers: dict[str, str] = {}
        for key in branch_forms:
            top = key.split("/")[-1].split(".")[0]
            container = top.replace("AuxDyn", "").replace("Aux", "")
            containers.setdefault(container.replace("Analysis", ""), container)
        for name, form in contents.items():
            record = form["content"] if "List" in form["class"] and "content" in form else form
            if record.get("class") != "RecordArray":
                continue
            parameters = {**record.get("parameters", {}), CONTAINER_PARAMETER: containers.get(name, name)}
            mixin = parameters.get("__record__")
            if name == "Jets":
                parameters["__record__"] = self.renamed["Jets"]
            elif mixin in self.renamed:
                parameters["__record__"] = self.renamed[mixin]
            record["parameters"] = parameters
        return contents

    @classmethod
    def behavior(cls):
        return behavior
