"""A throwaway PostgreSQL server for tests, from the PostgreSQL 15 binaries
(``TESSERA_PG_BIN``, default /usr/lib/postgresql/15/bin); fsync off, trust auth,
127.0.0.1 only. As root, initdb and the server run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

PG_BIN = Path(os.environ.get("TESSERA_PG_BIN", "/usr/lib/postgresql/15/bin"))


class Unavailable(Exception):
    """PostgreSQL cannot be started here (the reason is the message): skip."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """Run a server for the ``with`` block; yields the URL of its ``postgres``
    database (``postgresql+psycopg://tessera@127.0.0.1:PORT/postgres``)."""
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        raise Unavailable(f"PostgreSQL binaries not found in {PG_BIN}")
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root and there is no 'postgres' user") from None
        prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    base = Path(tempfile.mkdtemp(prefix="tessera-pg-"))
    if prefix:
        os.chown(base, user.pw_uid, user.pw_gid)
    data, port = base / "data", _free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=60)

    try:
        run(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "tessera",
            "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        options = f"-h 127.0.0.1 -p {port} -k '' -c fsync=off -c full_page_writes=off"
        run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-o", options,
            "-w", "start")  # fmt: skip
        yield f"postgresql+psycopg://tessera@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(Exception):
            run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def fresh_database(url: str) -> str:
    """Create an empty database on the server of ``url``; its URL."""
    import sqlalchemy as sa

    name = "t_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return url.rsplit("/", 1)[0] + "/" + name
