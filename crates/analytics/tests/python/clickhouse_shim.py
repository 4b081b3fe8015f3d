"""A test-only HTTP front over chDB (the ClickHouse engine, in process), so that the official
Rust `clickhouse` client runs end to end where no ClickHouse server can be installed. It speaks
the part of ClickHouse's HTTP interface the client uses: a statement in the body (SELECT, DDL),
or an INSERT in the `query` parameter with its data in the body (plain or chunked), the
`default_format` parameter, settings as parameters, and errors as text with the
X-ClickHouse-Exception-Code header. ClickHouse itself runs every statement: an INSERT's data
is written to a file and inserted with `file(...)` in the table's own structure.

usage: python3 clickhouse_shim.py <port> <data dir>
"""

import json
import os
import re
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlparse

from chdb import session

PORT, DATA = int(sys.argv[1]), sys.argv[2]
db = session.Session(DATA)
# One statement at a time on the session; connections (kept alive by clients) each a thread.
lock = threading.Lock()
INSERT = re.compile(
    r"^\s*INSERT\s+INTO\s+([`\w.]+)\s*(\(([^)]*)\))?\s*FORMAT\s+(\w+)\s*$", re.I | re.S
)
KNOWN = {"query", "database", "default_format", "decompress", "compress", "query_id"}


def structure(table, columns):
    """The table's insertable columns (or `columns`) with their types."""
    name = table.replace("`", "")
    database, _, table_name = name.rpartition(".")
    rows = db.query(
        "select name, type from system.columns where database = "
        f"{quote(database or 'default')} and table = {quote(table_name)} "
        "and default_kind not in ('MATERIALIZED', 'ALIAS') order by position",
        "JSONCompactEachRow",
    )
    pairs = [json.loads(line) for line in rows.bytes().decode().splitlines() if line]
    if columns:
        wanted = [c.strip().strip("`") for c in columns.split(",")]
        types = dict(pairs)
        pairs = [(c, types[c]) for c in wanted]
    return pairs


def quote(text):
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def answer(self, status, data, code=None):
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        if code is not None:
            self.send_header("X-ClickHouse-Exception-Code", str(code))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.answer(200, b"Ok.\n")

    def do_POST(self):
        params = dict(parse_qsl(urlparse(self.path).query))
        data = self.body()
        settings = {k: v for k, v in params.items() if k not in KNOWN}
        try:
            with lock:
                result = self.run(params, data, settings)
            self.answer(200, result)
        except Exception as e:  # chDB raises the server's exception text
            text = str(e)
            code = re.search(r"Code: (\d+)", text)
            self.answer(500, text.encode(), code.group(1) if code else 1000)

    def run(self, params, data, settings):
        if "query" in params:
            return self.insert(params["query"], data, settings)
        sql = data.decode()
        if settings:
            sql = sql.rstrip().rstrip(";") + " SETTINGS " + ", ".join(
                f"{k} = {quote(v)}" for k, v in settings.items()
            )
        return db.query(sql, params.get("default_format", "TabSeparated")).bytes()

    def insert(self, sql, data, settings):
        match = INSERT.match(sql)
        if not match:
            raise RuntimeError(f"Code: 62. DB::Exception: the shim takes INSERT ... FORMAT: {sql}")
        table, _, columns, fmt = match.groups()
        pairs = structure(table, columns)
        with tempfile.NamedTemporaryFile(dir=DATA, suffix=".data", delete=False) as f:
            f.write(data)
            path = f.name
        try:
            names = ", ".join(f"`{n}`" for n, _ in pairs)
            shape = ", ".join(f"`{n}` {t}" for n, t in pairs)
            extra = "".join(f", {k} = {quote(v)}" for k, v in settings.items())
            db.query(
                f"INSERT INTO {table} ({names}) SELECT * FROM file({quote(path)}, {fmt}, "
                f"{quote(shape)}) SETTINGS date_time_input_format = 'best_effort'{extra}"
            )
        finally:
            os.unlink(path)
        return b""


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
