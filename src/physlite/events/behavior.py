"""Behaviour of PHYSLITE objects: four-vectors through the ``vector`` package, and ElementLink properties.

Every collection gets its own record name (its physics name) and a record/array class pair built here:

- four-vector collections (``pt, eta, phi`` plus a mass, ``px, py, pz, e``, or for tracks ``pt, theta, phi``
  with the pion mass) inherit ``vector``'s
  ``Momentum4D`` mixins with their coordinates fixed explicitly, so a record with both ``e`` and ``m`` (truth
  particles) is not ambiguous. Units are ATLAS units: MeV for momenta, energies and masses. vector's
  properties (``pt``, ``eta``, ``theta``, ``mass``, ...) take precedence over fields of the same name in
  attribute access; ``array["name"]`` always gives the stored field.
  ``delta_r`` is an alias of vector's ``deltaR``.
- each ElementLink variable ``xLinks`` adds a property ``xs`` (``x`` for ``xLink``) returning the objects it
  points to, resolved by :class:`physlite.events.factory.EventFactory`; a link that is empty (``m_persKey ==
  0``), points to a container the file does not hold, or to an index beyond the target's size gives None.

Example:
    >>> import physlite
    >>> events = physlite.events.events("PHYSLITE_example.root")  # doctest: +SKIP
    >>> events.Electrons.trackParticles.z0                           # doctest: +SKIP
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import awkward as ak
import vector
from vector.backends import awkward as vector_awkward

from physlite.events.schema import ALIASES, CollectionSpec

FACTORY_ATTR = "@physlite_events"


class _PhysliteObject:
    """Mixin of every PHYSLITE record and array class: the collection it belongs to and link resolution."""

    collection_name: str = ""
    link_fields: ClassVar[dict[str, str]] = {}  # resolved property name -> field holding the raw links

    def _factory(self):
        factory = self.attrs.get(FACTORY_ATTR) if self.attrs else None
        if factory is None:
            raise AttributeError(
                f"{self.collection_name}: links can only be resolved on arrays made by physlite.events"
            )
        return factory

    def _hint(self, where: Any) -> None:
        # Which branch to take the collection's offsets from, if they are not read yet: the one touched now.
        if isinstance(where, str) and self.attrs:
            factory = self.attrs.get(FACTORY_ATTR)
            if factory is not None:
                factory.hint(self.collection_name, where)

    def _resolve(self, link_field: str, first: bool = False):
        resolved = self._factory().resolve(self, link_field)
        if first:
            resolved = ak.firsts(resolved, axis=resolved.ndim - 1)
        return resolved


class _PhysliteArray(_PhysliteObject, ak.Array):
    def __getitem__(self, where):
        self._hint(where)
        return super().__getitem__(where)

    def __getattr__(self, where):
        if where.startswith("_"):
            raise AttributeError(where)
        self._hint(where)
        return super().__getattr__(where)


class _PhysliteRecord(_PhysliteObject, ak.Record):
    def _resolve(self, link_field: str, first: bool = False):
        array = ak.Array(
            self.layout.array[self.layout.at : self.layout.at + 1], behavior=self.behavior, attrs=self.attrs
        )
        return array._resolve(link_field, first)[0]


class _FourVector:
    """Fixed coordinates for ``vector``: (azimuthal, longitudinal, temporal) field names."""

    coordinates: tuple[tuple[str, str], str, str] = (("pt", "phi"), "eta", "m")

    @property
    def azimuthal(self):
        (a, b), _, _ = self.coordinates
        if a == "px":
            return vector_awkward.AzimuthalAwkwardXY(self[a], self[b])
        return vector_awkward.AzimuthalAwkwardRhoPhi(self[a], self[b])

    @property
    def longitudinal(self):
        _, name, _ = self.coordinates
        if name == "pz":
            return vector_awkward.LongitudinalAwkwardZ(self[name])
        if name == "theta":
            return vector_awkward.LongitudinalAwkwardTheta(self[name])
        return vector_awkward.LongitudinalAwkwardEta(self[name])

    @property
    def temporal(self):
        _, _, name = self.coordinates
        if name == "e":
            return vector_awkward.TemporalAwkwardT(self[name])
        return vector_awkward.TemporalAwkwardTau(self[name])

    def __awkward_validation__(self):
        # vector refuses records with two candidate coordinates (truth has both e and m, tracks theta and
        # eta); the coordinates above are fixed, so the other fields are plain data.
        return None

    def delta_r(self, other):
        """Distance in (eta, phi) to ``other`` (alias of ``deltaR``)."""
        return self.deltaR(other)


def four_vector_coordinates(fields: set[str]) -> tuple[tuple[str, str], str, str] | None:
    """The coordinates a collection's four-vectors are built from, or None when it has none.

    Example:
        >>> four_vector_coordinates({"pt", "eta", "phi", "m", "charge"})
        (('pt', 'phi'), 'eta', 'm')
        >>> four_vector_coordinates({"px", "py", "pz", "e", "m"})
        (('px', 'py'), 'pz', 'e')
    """
    if {"pt", "phi", "theta", "qOverP", "m"} <= fields:  # track particles: theta is stored, eta is not
        return (("pt", "phi"), "theta", "m")
    if {"pt", "eta", "phi", "m"} <= fields:
        return (("pt", "phi"), "eta", "m")
    if {"px", "py", "pz", "e"} <= fields:
        return (("px", "py"), "pz", "e")
    return None


UNION_NAMES = {
    (("pt", "phi"), "eta", "m"): "PhysliteUnionPtEtaPhiM",
    (("pt", "phi"), "theta", "m"): "PhysliteUnionTrack",
    (("px", "py"), "pz", "e"): "PhysliteUnionPxPyPzE",
    None: "PhysliteUnion",
}


def union_record_name(common_fields: set[str]) -> str:
    """The record name of links resolved into several collections (a union), from their common fields."""
    return UNION_NAMES[four_vector_coordinates(common_fields)]


class _UnionLinks:
    """Links that point into several collections (e.g. truth parents): resolve any link all of them have."""

    link_names: ClassVar[dict[str, str]] = {}  # resolved name -> raw field, over all collections

    def __getattr__(self, where):
        raw = type(self).link_names.get(where)
        if raw is not None and "_idx_" + raw in self.fields:
            return self._resolve(raw)
        return super().__getattr__(where)


def _link_property(link_field: str, first: bool = False) -> property:
    def getter(self):
        return self._resolve(link_field, first)

    getter.__doc__ = f"The objects that {link_field} points to (None where the link is empty or dangling)."
    return property(getter)


def build_behavior(collections: list[CollectionSpec], field_names: dict[str, set[str]]) -> dict:
    """The awkward behavior dict for a file's collections (``field_names``: fields of each collection's records,
    including computed ones)."""
    behavior: dict = dict(vector_awkward.behavior)
    vector_names = []
    for spec in collections:
        coordinates = four_vector_coordinates(field_names[spec.name])
        properties: dict[str, Any] = {"collection_name": spec.name}
        links = {}
        for link in spec.links():
            properties[link.resolved] = _link_property(link.name)
            links[link.resolved] = link.name
        for (collection, alias), (target, first) in ALIASES.items():
            if collection == spec.name and target in links and alias not in field_names[spec.name]:
                properties[alias] = _link_property(links[target], first)
        properties["link_fields"] = links
        if coordinates is not None:
            properties["coordinates"] = coordinates
            record_bases = (_FourVector, _PhysliteRecord, vector_awkward.MomentumRecord4D)
            array_bases = (_FourVector, _PhysliteArray, vector_awkward.MomentumArray4D)
            vector_names.append(spec.name)
        else:
            record_bases = (_PhysliteRecord,)
            array_bases = (_PhysliteArray,)
        behavior[spec.name] = type(f"{spec.name}Record", record_bases, dict(properties))
        behavior["*", spec.name] = type(f"{spec.name}Array", array_bases, dict(properties))
    link_names: dict[str, str] = {}
    for spec in collections:
        for link in spec.links():
            link_names.setdefault(link.resolved, link.name)
    for coordinates, name in UNION_NAMES.items():
        properties = {"collection_name": name, "link_names": link_names}
        if coordinates is None:
            record_bases, array_bases = (_PhysliteRecord,), (_UnionLinks, _PhysliteArray)
        else:
            properties["coordinates"] = coordinates
            record_bases = (_FourVector, _PhysliteRecord, vector_awkward.MomentumRecord4D)
            array_bases = (_UnionLinks, _FourVector, _PhysliteArray, vector_awkward.MomentumArray4D)
            vector_names.append(name)
        behavior[name] = type(f"{name}Record", record_bases, dict(properties))
        behavior["*", name] = type(f"{name}Array", array_bases, dict(properties))
    _copy_vector_ufuncs(behavior, vector_names)
    return behavior


def _copy_vector_ufuncs(behavior: dict, names: list[str]) -> None:
    """Let numpy ufuncs (``+``, ``-``, ``==``, ``abs``...) act on our records as on ``Momentum4D`` ones."""
    vector.register_awkward()
    for key, value in list(vector_awkward.behavior.items()):
        if not isinstance(key, tuple) or key[0] == "*" or "Momentum4D" not in key[1:]:
            continue
        slots = [i for i, part in enumerate(key) if part == "Momentum4D"]
        for combination in itertools.product([*names, "Momentum4D"], repeat=len(slots)):
            new_key = list(key)
            for slot, name in zip(slots, combination, strict=True):
                new_key[slot] = name
            behavior.setdefault(tuple(new_key), value)
