"""Branches that hold no data: the interface side of xAOD's interface/auxiliary-store split.

An xAOD container is written as an interface object (``DataVector<xAOD::Electron_v1>`` named ``AnalysisElectrons``,
or ``xAOD::EventInfo_v1`` named ``EventInfo``) and an auxiliary store (``AnalysisElectronsAux.`` of type
``xAOD::AuxContainerBase``, ``EventInfoAux.`` of ``xAOD::AuxInfoBase``) whose variables are the ``...Aux.<var>`` and
``...AuxDyn.<var>`` branches. The interface objects, the stores' base objects and the base-class parts of split
stores carry only bookkeeping (a few bytes per entry); every value is in the variable branches, which physlite
reads. Telling these apart from types physlite cannot read keeps "unsupported" for what really is.

Example:
    >>> no_data_reason("AnalysisElectrons", "DataVector<xAOD::Electron_v1>", {"AnalysisElectrons"})
    'interface container: its values are the AnalysisElectronsAux./AuxDyn. branches'
"""

from __future__ import annotations

from collections.abc import Iterable

STORE_BASES = ("xAOD::AuxContainerBase", "xAOD::AuxInfoBase")
_STORE_MARKERS = ("AuxDyn.", "Aux.")


def collection_of(branch: str) -> str:
    """The xAOD object a branch belongs to: ``AnalysisElectronsAuxDyn.pt`` -> ``AnalysisElectrons``.

    Example:
        >>> collection_of("EventInfoAux.runNumber"), collection_of("index_ref")
        ('EventInfo', 'index_ref')
    """
    for marker in _STORE_MARKERS:
        if marker in branch:
            return branch.split(marker, 1)[0]
    return branch


def stores_of(names: Iterable[str]) -> set[str]:
    """The objects that have an auxiliary store among ``names``.

    Example:
        >>> sorted(stores_of(["AnalysisElectronsAuxDyn.pt", "EventInfoAux.", "index_ref"]))
        ['AnalysisElectrons', 'EventInfo']
    """
    return {collection_of(name) for name in names if "Aux" in name and collection_of(name) != name}


def no_data_reason(name: str, typename: str, stores: set[str], base_part: bool = False) -> str | None:
    """Why branch ``name`` of C++ type ``typename`` holds no data, or None when it may.

    ``stores`` are the objects with an auxiliary store in the file (:func:`stores_of`); ``base_part`` says that the
    branch is the base-class part of a split object (streamer type 0).
    """
    if typename in STORE_BASES:
        return f"base of an auxiliary store: its values are the {name}<variable> branches"
    if base_part:
        return "base-class part of a split auxiliary store: its values are its sibling branches"
    if (typename.startswith(("DataVector<", "xAOD::"))) and name in stores:
        kind = (
            "interface container"
            if typename.startswith("DataVector<") or "Container" in typename
            else "interface object"
        )
        return f"{kind}: its values are the {name}Aux./AuxDyn. branches"
    return None
