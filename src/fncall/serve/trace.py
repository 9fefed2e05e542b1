"""An append-only log of every exchange the server handled, in SQLite, and its export.

Each row holds the request as the client sent it (messages, tools, options), what the model
answered (final assistant message), the tool calls the server executed with their results, the
status and the latency. The database uses WAL so readers (an export running next to a live
server) never block the writer.

``export_training_data`` turns the successful exchanges into OpenAI's fine-tuning JSONL
(``{"messages": [...], "tools": [...], "parallel_tool_calls": bool}``), the format
``fncall.train.data`` reads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from fncall.errors import UserError
from fncall.serve.wire import json_text
from fncall.types import valid_unicode

SCHEMA = """
CREATE TABLE IF NOT EXISTS exchanges (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    model TEXT NOT NULL,
    stream INTEGER NOT NULL,
    status INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    request TEXT NOT NULL,
    response TEXT,
    executed TEXT NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS exchanges_created ON exchanges (created);
"""


class TraceLog:
    """Appends exchanges to a SQLite database; safe to call from several threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            raise UserError(f"--trace-db: folder {str(self.path.parent)!r} does not exist")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def record(
        self,
        *,
        model: str,
        request: Mapping[str, Any],
        response: Mapping[str, Any] | None,
        executed: list[dict[str, Any]] | None = None,
        status: int = 200,
        latency_s: float = 0.0,
        stream: bool = False,
        error: str | None = None,
        id: str | None = None,
    ) -> str:
        """Append one exchange; returns its id."""
        row_id = id or uuid.uuid4().hex
        row = (
            row_id,
            time.time(),
            model,
            int(stream),
            status,
            latency_s,
            json_text(request, default=str),
            json_text(response, default=str) if response is not None else None,
            json_text(executed or [], default=str),
            None if error is None else valid_unicode(error),
        )
        with self._lock:
            self._db.execute("INSERT INTO exchanges VALUES (?,?,?,?,?,?,?,?,?,?)", row)
        return row_id

    def close(self) -> None:
        with self._lock:
            self._db.close()


def read_exchanges(db_path: str | Path) -> Iterator[dict[str, Any]]:
    """Every logged exchange, oldest first, with its JSON columns decoded."""
    path = Path(db_path)
    if not path.is_file():
        raise UserError(f"trace database {str(path)!r} does not exist")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        for row in db.execute("SELECT * FROM exchanges ORDER BY created, rowid"):
            item = dict(row)
            item["stream"] = bool(item["stream"])
            item["request"] = json.loads(item["request"])
            item["response"] = json.loads(item["response"]) if item["response"] else None
            item["executed"] = json.loads(item["executed"])
            yield item
    finally:
        db.close()


def exchange_to_example(exchange: Mapping[str, Any]) -> dict[str, Any] | None:
    """One training example (OpenAI chat fine-tuning shape), or None if the exchange failed."""
    if exchange["status"] != 200 or not exchange["response"]:
        return None
    request = exchange["request"]
    messages = [dict(m) for m in request.get("messages", [])]
    messages.extend(exchange["executed"])
    final = {
        k: v for k, v in exchange["response"].items() if k in ("role", "content", "tool_calls")
    }
    messages.append(final)
    example: dict[str, Any] = {"messages": messages}
    if request.get("tools"):
        example["tools"] = request["tools"]
    if request.get("parallel_tool_calls") is not None:
        example["parallel_tool_calls"] = bool(request["parallel_tool_calls"])
    return example


def export_training_data(db_path: str | Path, out_jsonl: str | Path) -> int:
    """Write the successful exchanges of a trace database as OpenAI messages+tools JSONL.

    Returns the number of examples written. Failed or disconnected exchanges are skipped.
    """
    count = 0
    out = Path(out_jsonl)
    with out.open("w", encoding="utf-8") as handle:
        for exchange in read_exchanges(db_path):
            example = exchange_to_example(exchange)
            if example is None:
                continue
            handle.write(json.dumps(example, ensure_ascii=False) + "\n")
            count += 1
    return count
