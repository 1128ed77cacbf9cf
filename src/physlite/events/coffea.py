"""coffea integration: :class:`PhysliteSchema` for ``coffea.nanoevents.NanoEventsFactory``.

It builds the same collections as coffea's ``PHYSLITESchema`` (so a coffea processor written for it runs
unchanged) and replaces what breaks on real files:

- truth particles have both ``e`` and ``m``; coffea's four-vectors refuse them ("multiple temporal aliases"),
  here their coordinates are fixed to ``px, py, pz, e`` (``parents``/``children`` chains work);
- links resolve through hashes computed from the container names the file holds (no hard-coded table), with
  the key checked: a link into a container the file does not hold (r22 muons into
  ``InDetForwardTrackParticles``), an empty link or an index beyond the target gives None;
- ``Jets.GhostTrack`` resolves to the ghost-associated tracks (the raw links stay in ``jets["GhostTrack"]``).

Link resolution is implemented for coffea's virtual (and eager) mode.

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


def resolve_link(obj, link_field: str):
    """The objects that ``obj[link_field]`` points to, with the container key checked (None otherwise)."""
    events = obj._events()
    links = obj[link_field]
    keys = links.m_persKey
    index = awkward.values_astype(links.m_persIndex, np.int64)
    key_map = _key_map(_collections(events))
    present = np.unique(awkward.to_numpy(awkward.flatten(keys, axis=None)))
    targets = [(int(k), key_map[int(k)]) for k in present if int(k) in key_map]
    eventindex = awkward.broadcast_arrays(obj._eventindex, index)[0]
    result = None
    chosen = None
    for key, name in targets:
        target = events[name]
        offsets = _offsets(target)
        start = _take(offsets[:-1], eventindex)
        count = _take(offsets[1:], eventindex) - start
        valid = (keys == key) & (index < count)
        resolved = target._apply_global_index(awkward.where(valid, start + index, -1))
        result = resolved if result is None else awkward.where(valid, resolved, result)
        chosen = valid if chosen is None else chosen | valid
    if result is None:
        return awkward.mask(index, awkward.zeros_like(index, dtype=bool))
    return awkward.mask(result, chosen)


def _link(field: str, first: bool = False) -> property:
    def getter(self):
        out = resolve_link(self, field)
        return awkward.firsts(out, axis=out.ndim - 1) if first else out

    getter.__doc__ = f"The objects {field} points to (None for empty or foreign links)."
    return property(getter)


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
    """coffea's jet with ``GhostTrack`` resolved to the ghost-associated tracks."""

    GhostTrack = _link("GhostTrack")


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
