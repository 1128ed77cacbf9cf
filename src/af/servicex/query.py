"""UprootRaw selections (the client's ``UprootRawQuery``: a JSON list of sub-queries), checked when a request is
submitted so that a bad query is refused with a message instead of failing on every file.

A tree sub-query reads ``treename`` (PHYSLITE: ``CollectionTree``) with physlite. Its Python expressions
(``expressions``, ``cut``, ``aliases``) see:

- physlite's event model by collection name, ElementLinks resolved: ``Electrons.pt``,
  ``Electrons.trackParticles.z0``, ``Muons.trackParticle.phi``;
- raw branches by their PHYSLITE names: ``AnalysisElectronsAuxDyn.pt``, ``EventInfoAuxDyn.eventNumber``;
- ``ak`` (awkward), ``np`` (numpy) and the aliases.

``filter_name`` (names or glob patterns) reads raw branches by name. The ``cut`` selects events (one boolean per
event); an expression's output column is named by the expression's text, as uproot names it.

Example:
    >>> [q.treename for q in parse_selection('[{"treename": "CollectionTree", "filter_name": ["EventInfoAuxDyn.*"]}]')]
    ['CollectionTree']
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field

CODEGEN = "uproot-raw"
KNOWN_KEYS = {
    "treename",
    "expressions",
    "cut",
    "filter_name",
    "filter_typename",
    "aliases",
    "fail_on_missing_trees",
    "use_standard_awkward_axis",
}
UNSUPPORTED_KEYS = {"filter_typename", "copy_histograms"}


class QueryError(ValueError):
    """A selection this service cannot run; the text is what the user sees."""


@dataclass
class TreeQuery:
    treename: str
    expressions: list[str] = field(default_factory=list)
    cut: str | None = None
    filter_name: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)


def _strings(value, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise QueryError(f"UprootRaw: {key!r} must be a string or a list of strings, not {value!r}")


def _check_expression(text: str, key: str) -> str:
    try:
        ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise QueryError(f"UprootRaw: {key} {text!r} is not a valid Python expression: {error.msg}") from None
    return text


def parse_selection(selection: str) -> list[TreeQuery]:
    """The tree queries of an UprootRaw selection; QueryError naming the key at fault otherwise."""
    try:
        queries = json.loads(selection)
    except json.JSONDecodeError as error:
        raise QueryError(f"UprootRaw: the selection is not JSON: {error}") from None
    if isinstance(queries, dict):
        queries = [queries]
    if not isinstance(queries, list) or not queries:
        raise QueryError("UprootRaw: the selection must be a non-empty list of queries")
    result = []
    for i, query in enumerate(queries):
        if not isinstance(query, dict):
            raise QueryError(f"UprootRaw: query {i} is not an object")
        query = {k: v for k, v in query.items() if v is not None}
        unsupported = sorted(UNSUPPORTED_KEYS & query.keys())
        if unsupported:
            raise QueryError(f"UprootRaw: {', '.join(unsupported)} is not supported by this service")
        unknown = sorted(query.keys() - KNOWN_KEYS)
        if unknown:
            raise QueryError(f"UprootRaw: unknown key(s) {', '.join(unknown)} in query {i}")
        tree = query.get("treename")
        if not isinstance(tree, str) or not tree:
            raise QueryError(f"UprootRaw: query {i} needs 'treename' (one tree name, e.g. 'CollectionTree')")
        aliases = query.get("aliases") or {}
        if not isinstance(aliases, dict):
            raise QueryError("UprootRaw: 'aliases' must map names to expressions")
        expressions = [
            _check_expression(e, "expression") for e in _strings(query.get("expressions"), "expressions")
        ]
        filter_name = _strings(query.get("filter_name"), "filter_name")
        if not expressions and not filter_name:
            raise QueryError(f"UprootRaw: query {i} selects nothing: give 'expressions' or 'filter_name'")
        cut = query.get("cut")
        if cut is not None:
            if not isinstance(cut, str):
                raise QueryError("UprootRaw: 'cut' must be an expression string")
            _check_expression(cut, "cut")
        for name, text in aliases.items():
            _check_expression(str(text), f"alias {name}")
        result.append(
            TreeQuery(tree, expressions, cut, filter_name, {str(k): str(v) for k, v in aliases.items()})
        )
    return result
