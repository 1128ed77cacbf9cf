"""How PHYSLITE branches group into collections, and the names physicists use for them.

A PHYSLITE file stores each xAOD container ``C`` as one branch per variable, ``CAux.var`` (static variables)
or ``CAuxDyn.var`` (dynamic ones). The schema groups them by ``C``, gives the collection its physics name
(``AnalysisElectrons`` -> ``Electrons``), recognises ElementLink variables and names the objects they point to
(``trackParticleLinks`` -> ``trackParticles``, ``parentLinks`` -> ``parents``). It only looks at branch names
and C++ type names: no data is read. Behaviour (four-vectors, link resolution) lives in
:mod:`physlite.events.behavior`.

Example:
    >>> schema = Schema.from_branches({
    ...     "AnalysisElectronsAuxDyn.pt": "vector<float>",
    ...     "AnalysisElectronsAuxDyn.trackParticleLinks":
    ...         "vector<vector<ElementLink<DataVector<xAOD::TrackParticle_v1>>>>",
    ... })
    >>> schema.collections["Electrons"].fields["trackParticleLinks"].resolved
    'trackParticles'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from physlite.events import types

_AUX_BRANCH = re.compile(r"^(?P<container>[A-Za-z0-9_\-]+?)Aux(?:Dyn)?\.(?P<field>[A-Za-z0-9_]+)$")

# Containers renamed for physicists; all other containers keep their StoreGate name.
PHYSICS_NAMES: dict[str, str] = {
    "AnalysisElectrons": "Electrons",
    "AnalysisMuons": "Muons",
    "AnalysisJets": "Jets",
    "AnalysisLargeRJets": "LargeRJets",
    "AnalysisPhotons": "Photons",
    "AnalysisTauJets": "TauJets",
    "AnalysisSiHitElectrons": "SiHitElectrons",
    "MET_Core_AnalysisMET": "MET",
    "METAssoc_AnalysisMET": "METAssoc",
}

# Element class of well-known containers, used when the file does not name the class of a container.
KNOWN_CLASSES: dict[str, str] = {
    "AnalysisElectrons": "xAOD::Electron",
    "AnalysisMuons": "xAOD::Muon",
    "AnalysisJets": "xAOD::Jet",
    "AnalysisLargeRJets": "xAOD::Jet",
    "AnalysisPhotons": "xAOD::Photon",
    "AnalysisTauJets": "xAOD::TauJet",
    "InDetTrackParticles": "xAOD::TrackParticle",
    "GSFTrackParticles": "xAOD::TrackParticle",
    "CombinedMuonTrackParticles": "xAOD::TrackParticle",
    "ExtrapolatedMuonTrackParticles": "xAOD::TrackParticle",
    "MuonSpectrometerTrackParticles": "xAOD::TrackParticle",
    "PrimaryVertices": "xAOD::Vertex",
    "egammaClusters": "xAOD::CaloCluster",
    "CaloCalTopoClusters": "xAOD::CaloCluster",
    "TauTracks": "xAOD::TauTrack",
}

# Link variables whose resolved name is not derived by the suffix rules.
_RESOLVED_NAMES: dict[str, str] = {
    "childLinks": "children",
    "parentLinks": "parents",
    "vertexLinks": "vertices",
}

# Extra names: (collection, alias) -> resolved link it stands for, and whether it takes the first element.
ALIASES: dict[tuple[str, str], tuple[str, bool]] = {
    ("Electrons", "trackParticle"): ("trackParticles", True),
    ("Electrons", "caloCluster"): ("caloClusters", True),
    ("Photons", "caloCluster"): ("caloClusters", True),
    # as in coffea's PHYSLITE schema: the combined track (the ID track is Muons.inDetTrackParticle)
    ("Muons", "trackParticle"): ("combinedTrackParticle", False),
}


def physics_name(container: str) -> str:
    """The physics name of a container (``AnalysisElectrons`` -> ``Electrons``,
    ``AnalysisHLT_e26...`` / ``AnalysisTrigMatch_HLT_e26...`` -> ``TrigMatch_HLT_e26...``).

    Example:
        >>> physics_name("AnalysisTrigMatch_HLT_mu26_ivarmedium")
        'TrigMatch_HLT_mu26_ivarmedium'
    """
    if container in PHYSICS_NAMES:
        return PHYSICS_NAMES[container]
    if container.startswith("AnalysisTrigMatch_"):
        return "TrigMatch_" + container.removeprefix("AnalysisTrigMatch_")
    if container.startswith("AnalysisHLT_"):
        return "TrigMatch_" + container.removeprefix("Analysis")
    return container


def resolved_name(variable: str) -> str:
    """The name under which the objects a link variable points to appear.

    Example:
        >>> resolved_name("trackParticleLinks"), resolved_name("inDetTrackParticleLink")
        ('trackParticles', 'inDetTrackParticle')
        >>> resolved_name("GhostTrack")
        'GhostTrack'
    """
    if variable in _RESOLVED_NAMES:
        return _RESOLVED_NAMES[variable]
    if variable.endswith("Links") and len(variable) > 5:
        return variable[: -len("Links")] + "s"
    if variable.endswith("Link") and len(variable) > 4:
        return variable[: -len("Link")]
    return variable


@dataclass(frozen=True)
class FieldSpec:
    """One variable of a collection: the branch it comes from and its awkward type."""

    name: str
    branch: str
    type: types.Type
    resolved: str | None = None  # for ElementLinks: name of the property giving the target objects

    @property
    def is_link(self) -> bool:
        return self.resolved is not None


@dataclass
class CollectionSpec:
    """A container of the file: physics name, StoreGate name, whether it is one object per event, its fields."""

    name: str
    container: str
    singleton: bool
    element_class: str | None = None
    fields: dict[str, FieldSpec] = field(default_factory=dict)

    def links(self) -> list[FieldSpec]:
        return [f for f in self.fields.values() if f.is_link]


@dataclass
class Schema:
    """All collections of a file, keyed by physics name."""

    collections: dict[str, CollectionSpec]
    skipped: dict[str, str] = field(default_factory=dict)  # branch -> why it is not part of the model

    @classmethod
    def from_branches(cls, typenames: Mapping[str, str], classes: Mapping[str, str] | None = None) -> Schema:
        """Build the schema from ``{branch name: C++ type name}`` (the leaf branches of ``CollectionTree``);
        ``classes`` optionally maps container names to their element class (from the interface branches).
        """
        classes = dict(classes or {})
        grouped: dict[str, dict[str, tuple[str, types.Type]]] = {}
        skipped: dict[str, str] = {}
        for branch, typename in typenames.items():
            match = _AUX_BRANCH.match(branch)
            if not match:
                continue
            try:
                parsed = types.parse(typename)
            except types.UnsupportedType as error:
                skipped[branch] = str(error)
                continue
            grouped.setdefault(match["container"], {})[match["field"]] = (branch, parsed)

        collections: dict[str, CollectionSpec] = {}
        for container, variables in sorted(grouped.items()):
            singleton = any(not isinstance(t, types.List) for _, t in variables.values())
            spec = CollectionSpec(
                name=physics_name(container),
                container=container,
                singleton=singleton,
                element_class=classes.get(container) or KNOWN_CLASSES.get(container),
            )
            taken = set(variables)
            for variable, (branch, parsed) in sorted(variables.items()):
                if singleton:
                    element_type = parsed
                elif isinstance(parsed, types.List):
                    element_type = parsed.content
                else:  # a scalar in a container of vectors: not a per-object variable
                    skipped[branch] = "scalar variable in a per-object container"
                    continue
                if singleton and isinstance(parsed, types.List) and not types.contains_link(parsed):
                    # e.g. EventInfo.mcEventWeights: a list per event, kept as it is
                    element_type = parsed
                resolved = resolved_name(variable) if types.contains_link(element_type) else None
                name = variable
                if resolved is not None and resolved == variable:
                    name = variable + "Links"
                    if name in taken:
                        skipped[branch] = f"raw link name {name} collides with another variable"
                        continue
                spec.fields[name] = FieldSpec(name=name, branch=branch, type=element_type, resolved=resolved)
            if spec.fields:
                if (
                    spec.name in collections
                ):  # two containers with one physics name: keep both, StoreGate name
                    spec.name = container
                collections[spec.name] = spec
        return cls(collections=collections, skipped=skipped)

    def by_container(self) -> dict[str, CollectionSpec]:
        return {c.container: c for c in self.collections.values()}
