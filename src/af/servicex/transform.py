"""One file of a request, run on a dask worker: read it with physlite, evaluate the UprootRaw queries, write ROOT
(uproot) or Parquet, and upload the output with a presigned PUT URL (workers hold no S3 credentials).

A file of a rucio DID comes with its replicas' URLs (resolved by the service with the requesting user's rucio
client, best first) and that user's IAM access token, which the https source presents to the storage: workers
need no rucio configuration and no credential of their own. The token travels as a `BearerToken`, whose repr
is redacted (dask logs a failed task's arguments); it is never written anywhere.

Errors that another attempt may cure (the storage or the network) raise `TransientError` (the service tries the
file again later); everything else is returned as the file's failure text, so that one bad file never fails the
others. A task whose request was canceled meanwhile (its dask Event is set) uploads nothing.

Example (what a worker runs for one file):
    >>> outcome = transform_file("/data/PHYSLITE_example.root", selection, "parquet", put_url, flag)  # doctest: +SKIP
    >>> outcome["size"], outcome["events"]  # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
import urllib.error
import urllib.request
from typing import Any

from af.servicex.query import QueryError, TreeQuery, parse_selection

PHYSLITE_TREE = "CollectionTree"


class TransientError(Exception):
    """A failure another attempt may not see (network, storage); dask retries the task."""


class BearerToken:
    """A user's access token as a task argument: its repr and str never show it (dask logs the arguments of
    a failed task).

    Example:
        >>> BearerToken("eyJ...")
        BearerToken(<redacted>)
    """

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __repr__(self) -> str:
        return "BearerToken(<redacted>)"

    __str__ = __repr__

    def __reduce__(self):
        return BearerToken, (self.value,)


class _Branches:
    """``AnalysisElectronsAuxDyn.pt`` in an expression: attribute access reads that raw branch."""

    def __init__(self, names: _Names, prefix: str):
        self._names, self._prefix = names, prefix

    def __getattr__(self, leaf: str):
        return self._names.branch(f"{self._prefix}.{leaf}")


class _Names(dict):
    """The names an expression sees: aliases, ak/np, the event model's collections, raw branches."""

    def __init__(self, location: str, query: TreeQuery, options: dict[str, Any]):
        import awkward as ak
        import numpy as np

        import physlite

        super().__init__(ak=ak, np=np)
        self.location, self.query, self.options = location, query, options
        self.file = physlite.open(location, tree=query.treename, **options)
        self.keys_ = set(self.file.keys())
        self.prefixes = {key.split(".", 1)[0] for key in self.keys_ if "." in key}
        self._events = None

    @property
    def events(self):
        if self._events is None:
            import physlite

            self._events = physlite.events(self.location, **self.options)
        return self._events

    def branch(self, name: str):
        if name not in self.keys_:
            raise QueryError(f"no branch {name!r} in {self.location}")
        return self.file.arrays([name])[name]

    def evaluate(self, text: str):
        return eval(text, {"__builtins__": _BUILTINS}, self)  # checked as an expression at submission

    def __missing__(self, name: str):
        if name in self.query.aliases:
            value = self.evaluate(self.query.aliases[name])
        elif name in self.prefixes:
            value = _Branches(self, name)
        elif name in self.keys_:
            value = self.branch(name)
        elif name in self.events.fields:
            value = self.events[name]
        else:
            raise QueryError(
                f"{name!r} is neither a collection of the event model nor a branch of {self.location}"
            )
        self[name] = value
        return value


_BUILTINS = {n: __builtins__[n] if isinstance(__builtins__, dict) else getattr(__builtins__, n) for n in (
    "abs", "min", "max", "len", "sum", "round", "int", "float", "bool", "range", "True", "False", "None",
)}  # fmt: skip


def _selected_branches(names: _Names, patterns: list[str]) -> list[str]:
    chosen = []
    for pattern in patterns:
        matches = (
            sorted(k for k in names.keys_ if fnmatch.fnmatchcase(k, pattern))
            if any(c in pattern for c in "*?[")
            else ([pattern] if pattern in names.keys_ else [])
        )
        if not matches:
            raise QueryError(f"filter_name {pattern!r} matches no branch of {names.location}")
        chosen += [m for m in matches if m not in chosen]
    return chosen


def run_query(location: str, query: TreeQuery, **options: Any) -> dict[str, Any]:
    """The output columns of one tree query on one file (the cut applied), by column name; `options` go to
    the file's source (e.g. ``token``)."""
    import awkward as ak
    import numpy as np

    if query.treename != PHYSLITE_TREE:
        raise QueryError(f"treename {query.treename!r}: physlite reads PHYSLITE's {PHYSLITE_TREE}")
    names = _Names(location, query, options)
    columns: dict[str, Any] = {}
    if query.filter_name and not query.expressions:
        selected = _selected_branches(names, query.filter_name)
        columns.update(names.file.arrays(selected))
    for text in query.expressions:
        columns[text] = names.evaluate(text)
    if query.cut:
        mask = names.evaluate(query.cut)
        try:
            mask = np.asarray(ak.to_numpy(ak.fill_none(mask, False)), dtype=bool)
        except (ValueError, TypeError):
            raise QueryError(f"cut {query.cut!r} must give one boolean per event") from None
        if mask.ndim != 1 or len(mask) != names.file.num_entries:
            raise QueryError(f"cut {query.cut!r} must give one boolean per event")
        columns = {name: array[mask] for name, array in columns.items()}
    return columns


def write_output(
    queries: list[TreeQuery], outputs: list[dict[str, Any]], result_format: str, path: str
) -> None:
    import awkward as ak

    if result_format == "parquet":
        if len(outputs) != 1:
            raise QueryError("Parquet output holds one query: submit one UprootRaw query per request")
        ak.to_parquet(ak.zip(outputs[0], depth_limit=1), path)
        return
    import uproot

    with uproot.recreate(path) as out:
        used: set[str] = set()
        for query, columns in zip(queries, outputs, strict=True):
            name = query.treename
            while name in used:
                name += "_"
            used.add(name)
            try:
                out[name] = {column: ak.to_packed(array) for column, array in columns.items()}
            except (TypeError, ValueError, NotImplementedError) as error:
                raise QueryError(
                    f"cannot write these columns to a ROOT TTree ({error}); ask for Parquet output or "
                    "flatten them (e.g. ak.firsts, ak.fill_none)"
                ) from None


def upload(path: str, url: str) -> None:
    size = os.path.getsize(path)
    with open(path, "rb") as body:
        request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Length": str(size)})
        try:
            with urllib.request.urlopen(request, timeout=300) as answer:
                answer.read()
        except urllib.error.HTTPError as error:
            raise TransientError(f"upload of the output failed: HTTP {error.code} {error.reason}") from None
        except OSError as error:
            raise TransientError(f"upload of the output failed: {error}") from None


def canceled(flag: str | None) -> bool:
    """Whether the dask Event `flag` is set (False outside a dask worker or without a flag)."""
    if not flag:
        return False
    from distributed import Event, get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return Event(flag).is_set()


def read_replicas(
    location: str, queries: list[TreeQuery], replicas: list[str], token: BearerToken | None
) -> list[dict[str, Any]]:
    """The queries' columns from the first replica that can be read (the file DID `location`'s replicas, best
    first), presenting `token`; the last replica's error (naming the DID and every replica's reason) when none
    can."""
    from physlite.io.errors import AccessDenied, RemoteError, SourceError

    options = {"token": token.value} if token is not None else {}
    failures: list[SourceError] = []
    for url in replicas:
        try:
            return [run_query(url, query, **options) for query in queries]
        except SourceError as error:
            failures.append(error)
    reasons = "; ".join(str(error) for error in failures) or "rucio listed no replica"
    if failures and all(isinstance(error, AccessDenied) for error in failures):
        raise AccessDenied(location, f"every replica refused the user's token: {reasons}")
    if any(isinstance(error, RemoteError) for error in failures):
        raise RemoteError(location, f"no replica could be read: {reasons}")
    raise SourceError(location, f"no replica could be read: {reasons}")


def transform_file(
    location: str,
    selection: str,
    result_format: str,
    put_url: str,
    cancel_flag: str | None = None,
    replicas: list[str] | None = None,
    token: BearerToken | None = None,
) -> dict[str, Any]:
    """Transform one file (a path, a URL, or a file DID read from its `replicas` with `token`) and upload the
    output; ``{"size", "events"}``, ``{"error": text}`` (with ``"token_refused": True`` when every replica
    refused `token`) or, when the request was canceled meanwhile, ``{"canceled": True}`` (nothing uploaded)."""
    from physlite.errors import PhysliteError
    from physlite.io.errors import AccessDenied, RemoteError

    if canceled(cancel_flag):
        return {"canceled": True}
    queries = parse_selection(selection)
    try:
        if replicas is not None:
            outputs = read_replicas(location, queries, replicas, token)
        else:
            outputs = [run_query(location, query) for query in queries]
        with tempfile.TemporaryDirectory(prefix="servicex-") as folder:
            path = os.path.join(folder, "output")
            write_output(queries, outputs, result_format, path)
            if canceled(cancel_flag):
                return {"canceled": True}
            upload(path, put_url)
            size = os.path.getsize(path)
    except (RemoteError, ConnectionError, TimeoutError) as error:
        text = str(error)  # physlite's errors name the location already
        raise TransientError(text if location in text else f"{location}: {text}") from error
    except TransientError:
        raise
    except AccessDenied as error:
        return {"error": str(error), "token_refused": replicas is not None and token is not None}
    except (QueryError, PhysliteError) as error:
        return {"error": str(error)}
    except Exception as error:  # an expression's own error (NameError, TypeError, awkward's): the user's text
        return {"error": f"{location}: {type(error).__name__}: {error}"}
    events = len(next(iter(outputs[0].values()))) if outputs and outputs[0] else 0
    return {"size": size, "events": events}
