"""Requests, their files and looked-up datasets in SQLite: what survives a restart of the service.

Every write is committed at once; the service is the only writer (one process, one event loop).

Example:
    >>> store = Store(":memory:")
    >>> store.add_request(Request("r1", "alice", "h", "t", "rucio://s:n", None, "[]", "uproot-raw",
    ...                           "parquet", "CollectionTree"), ["s:f1.root"])
    >>> store.request("r1").files
    1
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime

# the client's Status values (servicex.models.Status)
SUBMITTED, LOOKUP, RUNNING, COMPLETE, FATAL, CANCELED, BAD_DATASET = (
    "Submitted",
    "Lookup",
    "Running",
    "Complete",
    "Fatal",
    "Canceled",
    "Bad Dataset",
)
FINISHED = (COMPLETE, FATAL, CANCELED, BAD_DATASET)
PENDING, SUCCESS, FAILURE = "pending", "success", "failure"

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY, owner TEXT NOT NULL, hash TEXT NOT NULL, title TEXT, did TEXT,
    file_list TEXT, selection TEXT NOT NULL, codegen TEXT NOT NULL, result_format TEXT NOT NULL,
    tree_name TEXT, status TEXT NOT NULL DEFAULT 'Submitted', submit_time TEXT, finish_time TEXT,
    error TEXT, dataset_id INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS requests_owner ON requests (owner, hash);
CREATE TABLE IF NOT EXISTS files (
    request_id TEXT NOT NULL, idx INTEGER NOT NULL, location TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', error TEXT, object_name TEXT, size INTEGER, created_at TEXT,
    PRIMARY KEY (request_id, idx)
);
CREATE TABLE IF NOT EXISTS s3_credentials (owner TEXT PRIMARY KEY, access_key TEXT NOT NULL, secret_key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS datasets (
    id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL, name TEXT NOT NULL, did_finder TEXT NOT NULL,
    files TEXT NOT NULL, last_used TEXT NOT NULL, last_updated TEXT NOT NULL, stale INTEGER NOT NULL DEFAULT 0
);
"""


def now() -> str:
    """UTC now as the client reads it (ISO, naive: the client adds UTC itself)."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat()


@dataclass
class Request:
    request_id: str
    owner: str
    hash: str
    title: str | None
    did: str | None
    file_list: str | None  # JSON list as submitted
    selection: str
    codegen: str
    result_format: str
    tree_name: str | None
    status: str = SUBMITTED
    submit_time: str = ""
    finish_time: str | None = None
    error: str | None = None
    dataset_id: int = 0
    # counts, filled by Store.request
    files: int = 0
    files_completed: int = 0
    files_failed: int = 0


@dataclass
class FileTask:
    request_id: str
    idx: int
    location: str
    status: str = PENDING
    error: str | None = None
    object_name: str | None = None
    size: int | None = None
    created_at: str | None = None


_STORED = [f.name for f in fields(Request) if f.name not in ("files", "files_completed", "files_failed")]


class Store:
    def __init__(self, path: str):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)

    def add_request(self, request: Request, locations: list[str]) -> None:
        request.submit_time = request.submit_time or now()
        values = asdict(request)
        with self.db:
            self.db.execute(
                f"INSERT INTO requests ({', '.join(_STORED)}) VALUES ({', '.join('?' * len(_STORED))})",
                [values[name] for name in _STORED],
            )
            self.set_files(request.request_id, locations)

    def set_files(self, request_id: str, locations: list[str]) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO files (request_id, idx, location) VALUES (?, ?, ?)",
            [(request_id, i, location) for i, location in enumerate(locations)],
        )

    def request(self, request_id: str) -> Request | None:
        row = self.db.execute("SELECT * FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        if row is None:
            return None
        request = Request(**dict(row))
        counts = dict(
            self.db.execute(
                "SELECT status, COUNT(*) FROM files WHERE request_id = ? GROUP BY status", (request_id,)
            ).fetchall()
        )
        request.files = sum(counts.values())
        request.files_completed = counts.get(SUCCESS, 0)
        request.files_failed = counts.get(FAILURE, 0)
        return request

    def requests(self, owner: str | None = None, statuses: tuple[str, ...] | None = None) -> list[Request]:
        query, args = "SELECT request_id FROM requests WHERE 1", []
        if owner is not None:
            query, args = query + " AND owner = ?", [*args, owner]
        if statuses:
            query += f" AND status IN ({', '.join('?' * len(statuses))})"
            args += list(statuses)
        ids = [row[0] for row in self.db.execute(query + " ORDER BY submit_time", args)]
        return [r for r in map(self.request, ids) if r is not None]

    def cached(self, owner: str, hash_: str) -> Request | None:
        """The owner's complete request with this hash and no failed file, if its results still exist."""
        for row in self.db.execute(
            "SELECT request_id FROM requests WHERE owner = ? AND hash = ? AND status = ? ORDER BY submit_time DESC",
            (owner, hash_, COMPLETE),
        ):
            request = self.request(row[0])
            if request and request.files_failed == 0:
                return request
        return None

    def set_status(self, request_id: str, status: str, error: str | None = None) -> None:
        finish = now() if status in FINISHED else None
        self.db.execute(
            "UPDATE requests SET status = ?, error = COALESCE(?, error), finish_time = ? WHERE request_id = ?",
            (status, error, finish, request_id),
        )

    def set_dataset(self, request_id: str, dataset_id: int) -> None:
        self.db.execute("UPDATE requests SET dataset_id = ? WHERE request_id = ?", (dataset_id, request_id))

    def files(self, request_id: str, status: str | None = None) -> list[FileTask]:
        query, args = "SELECT * FROM files WHERE request_id = ?", [request_id]
        if status:
            query, args = query + " AND status = ?", [*args, status]
        return [FileTask(**dict(row)) for row in self.db.execute(query + " ORDER BY idx", args)]

    def finish_file(self, request_id: str, idx: int, *, object_name=None, size=None, error=None) -> None:
        self.db.execute(
            "UPDATE files SET status = ?, object_name = ?, size = ?, error = ?, created_at = ? "
            "WHERE request_id = ? AND idx = ? AND status = ?",
            (
                SUCCESS if error is None else FAILURE,
                object_name,
                size,
                error,
                now(),
                request_id,
                idx,
                PENDING,
            ),
        )

    def delete_request(self, request_id: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM files WHERE request_id = ?", (request_id,))
            self.db.execute("DELETE FROM requests WHERE request_id = ?", (request_id,))

    def expired(self, before: str) -> list[str]:
        """The finished requests that finished before `before` (their results' lifetime counts from then)."""
        return [
            row[0]
            for row in self.db.execute(
                "SELECT request_id FROM requests WHERE COALESCE(finish_time, submit_time) < ? "
                "AND status IN (?, ?, ?, ?)",
                (before, *FINISHED),
            )
        ]

    def credentials(self, owner: str) -> tuple[str, str] | None:
        """The owner's read-only S3 key (kept so that a restart does not change the key a client holds)."""
        row = self.db.execute(
            "SELECT access_key, secret_key FROM s3_credentials WHERE owner = ?", (owner,)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def set_credentials(self, owner: str, access_key: str, secret_key: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO s3_credentials VALUES (?, ?, ?)", (owner, access_key, secret_key)
        )

    # datasets: what a DID or a file list resolved to, per owner
    def add_dataset(self, owner: str, name: str, did_finder: str, files: list[dict]) -> int:
        stamp = now()
        cursor = self.db.execute(
            "INSERT INTO datasets (owner, name, did_finder, files, last_used, last_updated) VALUES (?, ?, ?, ?, ?, ?)",
            (owner, name, did_finder, json.dumps(files), stamp, stamp),
        )
        return int(cursor.lastrowid)

    def datasets(self, owner: str, did_finder: str | None = None, show_deleted: bool = False) -> list[dict]:
        query, args = "SELECT * FROM datasets WHERE owner = ?", [owner]
        if did_finder:
            query, args = query + " AND did_finder = ?", [*args, did_finder]
        if not show_deleted:
            query += " AND stale = 0"
        return [dict(row) for row in self.db.execute(query + " ORDER BY id", args)]

    def dataset(self, owner: str, dataset_id: int) -> dict | None:
        row = self.db.execute(
            "SELECT * FROM datasets WHERE owner = ? AND id = ?", (owner, dataset_id)
        ).fetchone()
        return dict(row) if row else None

    def mark_dataset_stale(self, dataset_id: int) -> None:
        self.db.execute("UPDATE datasets SET stale = 1 WHERE id = ?", (dataset_id,))
