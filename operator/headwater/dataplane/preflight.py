"""CDC preflight: log in to a source database and check what Debezium will need.

Blocking (psycopg 3, pymysql); call through `ctx.blocking`. Every function returns a
`Result` instead of raising for the failures a user can cause (unreachable host, wrong
password, missing database, TLS refused), so the operator reports them as conditions and
never logs a traceback for them. Messages are built from the driver's message with the
password replaced, and never include the connection parameters.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
import pymysql
from psycopg import sql

from ..constants import Reason

CheckStatus = Literal["Pass", "Fail", "Warn", "Skipped"]
PASS: CheckStatus = "Pass"
FAIL: CheckStatus = "Fail"
WARN: CheckStatus = "Warn"


@dataclass(frozen=True)
class Target:
    """Where and how to log in. `password` never leaves this module in a message."""

    type: str
    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)
    tls_mode: str = "prefer"
    ca_pem: str | None = field(default=None, repr=False)
    tables: tuple[str, ...] = ()
    publication: str | None = None
    publication_autocreate: str = "filtered"
    require_gtid: bool = False
    timeout: float = 10.0


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    observed: str = ""
    expected: str = ""
    hint: str = ""

    def wire(self) -> dict[str, str]:
        return {
            "name": self.name,
            "status": self.status,
            "observed": self.observed[:1024],
            "expected": self.expected[:1024],
            "hint": self.hint[:1024],
        }


@dataclass
class Result:
    reachable: bool
    reason: str  # Connected, Unreachable, AuthenticationFailed, DatabaseNotFound
    message: str = ""
    server_version: str | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]


def run(target: Target) -> Result:
    """Reachability, login and CDC prerequisites of a postgres/mysql/mariadb source."""
    if target.type == "postgres":
        return postgres(target)
    if target.type in ("mysql", "mariadb"):
        return mysql(target)
    return tcp(target)


def tcp(target: Target) -> Result:
    """Only whether the port accepts connections (types without a preflight)."""
    try:
        with socket.create_connection((target.host, target.port), timeout=target.timeout):
            return Result(
                True, Reason.CONNECTED, f"{target.host}:{target.port} accepts connections"
            )
    except OSError as err:
        return Result(
            False, Reason.UNREACHABLE, f"{target.host}:{target.port}: {err.strerror or err}"
        )


# --- shared helpers -----------------------------------------------------------------------


def _clean(message: str, target: Target) -> str:
    """One line, password removed (drivers don't echo it, but never rely on that)."""
    text = " ".join(message.split())
    if target.password:
        text = text.replace(target.password, "***")
    return text[:900]


_CA_DIR: list[str] = []


def ca_file(pem: str) -> str:
    """A private file holding a CA bundle (drivers take paths), one per distinct content."""
    if not _CA_DIR:
        _CA_DIR.append(tempfile.mkdtemp(prefix="headwater-ca-"))
    path = os.path.join(_CA_DIR[0], hashlib.sha256(pem.encode()).hexdigest()[:24] + ".pem")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(pem)
    return path


def split_table(table: str) -> tuple[str, str]:
    schema, _, name = table.partition(".")
    return schema, name


def _listing(items: Iterable[str], limit: int = 8) -> str:
    items = list(items)
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


# --- PostgreSQL ---------------------------------------------------------------------------


def _pg_connect(target: Target) -> psycopg.Connection[Any]:
    kwargs: dict[str, Any] = {
        "host": target.host,
        "port": target.port,
        "dbname": target.database,
        "user": target.user,
        "password": target.password,
        "sslmode": target.tls_mode,
        "connect_timeout": max(2, int(target.timeout)),
        "application_name": "headwater-preflight",
        "options": f"-c statement_timeout={int(target.timeout * 1000)}",
        "autocommit": True,
    }
    if target.ca_pem:
        kwargs["sslrootcert"] = ca_file(target.ca_pem)
    return psycopg.connect(**kwargs)


def _pg_failure(err: psycopg.Error, target: Target) -> Result:
    text = str(err)
    # "connection failed: connection to server at "h", port p failed: FATAL: ..." -> "FATAL: ..."
    detail = re.sub(r"^.*?port \d+ failed: ", "", " ".join(text.split()))
    detail = detail.removeprefix("connection failed: ")
    lowered = detail.lower()
    if (
        "password authentication failed" in lowered
        or "no pg_hba.conf entry" in lowered
        or ("role" in lowered and "does not exist" in lowered)
        or "authentication failed" in lowered
    ):
        reason = Reason.AUTHENTICATION_FAILED
    elif "database" in lowered and "does not exist" in lowered:
        reason = Reason.DATABASE_NOT_FOUND
    else:
        reason = Reason.UNREACHABLE
    return Result(False, reason, _clean(detail, target))


def postgres(target: Target) -> Result:
    try:
        with _pg_connect(target) as conn:
            version = str(_pg_one(conn, "SHOW server_version"))
            checks = _pg_checks(conn, target)
    except psycopg.Error as err:
        return _pg_failure(err, target)
    return Result(True, Reason.CONNECTED, "login succeeded", version, checks)


def _pg_one(conn: psycopg.Connection[Any], query: str, params: Sequence[Any] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def _pg_checks(conn: psycopg.Connection[Any], target: Target) -> list[Check]:
    return [
        _pg_version(conn),
        _pg_wal_level(conn),
        _pg_replication_role(conn, target),
        _pg_capacity(conn, "max_replication_slots", "SELECT count(*) FROM pg_replication_slots"),
        _pg_capacity(conn, "max_wal_senders", "SELECT count(*) FROM pg_stat_replication"),
        _pg_publication(conn, target),
        *_pg_tables(conn, target),
    ]


def _pg_version(conn: psycopg.Connection[Any]) -> Check:
    num = int(_pg_one(conn, "SHOW server_version_num"))
    return Check(
        "server_version",
        PASS if num >= 100000 else FAIL,
        str(_pg_one(conn, "SHOW server_version")),
        ">= 10 (pgoutput)",
        "" if num >= 100000 else "Debezium needs PostgreSQL 10 or later",
    )


def _pg_wal_level(conn: psycopg.Connection[Any]) -> Check:
    level = str(_pg_one(conn, "SHOW wal_level"))
    ok = level == "logical"
    return Check(
        "wal_level",
        PASS if ok else FAIL,
        level,
        "logical",
        "" if ok else "set wal_level = logical in postgresql.conf and restart PostgreSQL",
    )


def _pg_replication_role(conn: psycopg.Connection[Any], target: Target) -> Check:
    row = conn.execute(
        "SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    replication, superuser = (bool(row[0]), bool(row[1])) if row else (False, False)
    # Amazon RDS/Aurora grant replication through a role instead of the attribute.
    rds = bool(
        _pg_one(
            conn,
            # CASE, not AND: SQL does not promise to evaluate AND left to right, and
            # pg_has_role fails for a role that does not exist.
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication') "
            "THEN pg_has_role(current_user, 'rds_replication', 'MEMBER') ELSE false END",
        )
    )
    observed = (
        "superuser"
        if superuser
        else "REPLICATION"
        if replication
        else "rds_replication"
        if rds
        else "none"
    )
    ok = superuser or replication or rds
    return Check(
        "replication_privilege",
        PASS if ok else FAIL,
        observed,
        "REPLICATION or superuser",
        "" if ok else f'ALTER ROLE "{target.user}" WITH REPLICATION;',
    )


def _pg_capacity(conn: psycopg.Connection[Any], setting: str, used_query: str) -> Check:
    """A free replication slot / WAL sender. All in use is a warning: connectors that already
    have theirs keep working, only a new one cannot start. The observed value names the
    limit, not the count in use, so other clients coming and going don't rewrite the status."""
    limit = int(_pg_one(conn, f"SHOW {setting}"))
    used = int(_pg_one(conn, used_query))
    if limit == 0:
        status, observed = FAIL, "0"
        hint = f"set {setting} > 0 in postgresql.conf and restart PostgreSQL"
    elif used >= limit:
        status, observed = WARN, f"{limit}, all in use"
        hint = f"a new connector cannot start: raise {setting} or drop unused slots"
    else:
        status, observed, hint = PASS, f"{limit}, some free", ""
    return Check(setting, status, observed, "at least one free", hint)


def _pg_can_create_publication(conn: psycopg.Connection[Any], target: Target) -> tuple[bool, str]:
    """Whether the role may create the publication in the configured autocreate mode."""
    if not bool(_pg_one(conn, "SELECT has_database_privilege(current_database(), 'CREATE')")):
        return False, f'GRANT CREATE ON DATABASE {target.database} TO "{target.user}";'
    superuser = bool(_pg_one(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
    if target.publication_autocreate == "all_tables" and not superuser:
        return False, "FOR ALL TABLES publications need a superuser; create it yourself"
    if target.publication_autocreate == "filtered" and not superuser:
        rows = {t: _pg_table_row(conn, t) for t in target.tables}
        not_owned = [t for t, row in rows.items() if row is not None and not row["owned"]]
        if not_owned:
            return False, (
                "adding tables to a publication needs their ownership: share it through a "
                f"group role or create the publication yourself ({_listing(not_owned, 3)})"
            )
    return True, ""


def _pg_publication(conn: psycopg.Connection[Any], target: Target) -> Check:
    name = target.publication
    expected = "exists, or the role may create it"
    if name is not None:
        row = conn.execute(
            "SELECT puballtables FROM pg_publication WHERE pubname = %s", (name,)
        ).fetchone()
        if row is not None:
            return _pg_existing_publication(conn, target, name, bool(row[0]), expected)
        if target.publication_autocreate == "disabled":
            tables = ", ".join(target.tables) or "<tables>"
            return Check(
                "publication",
                FAIL,
                f"{name}: missing",
                "exists (publicationAutocreateMode: disabled)",
                f"CREATE PUBLICATION {name} FOR TABLE {tables};",
            )
    ok, hint = _pg_can_create_publication(conn, target)
    label = name or "one per connector"
    return Check(
        "publication",
        PASS if ok else FAIL,
        f"{label}: {'absent, ' if name else ''}role {'may' if ok else 'may not'} create it",
        expected,
        hint,
    )


def _pg_existing_publication(
    conn: psycopg.Connection[Any], target: Target, name: str, all_tables: bool, expected: str
) -> Check:
    if all_tables or target.publication_autocreate != "disabled" or not target.tables:
        return Check("publication", PASS, f"{name}: exists", expected)
    rows = conn.execute(
        "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = %s",
        (name,),
    ).fetchall()
    missing = sorted(set(target.tables) - {r[0] for r in rows})
    if not missing:
        return Check("publication", PASS, f"{name}: exists with all tables", expected)
    return Check(
        "publication",
        FAIL,
        f"{name}: lacks {_listing(missing)}",
        "contains every captured table",
        f"ALTER PUBLICATION {name} ADD TABLE {', '.join(missing)};",
    )


def _pg_table_row(conn: psycopg.Connection[Any], table: str) -> dict[str, Any] | None:
    schema, name = split_table(table)
    row = conn.execute(
        """
        SELECT c.relreplident,
               pg_has_role(c.relowner, 'USAGE'),
               EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
               has_table_privilege(c.oid, 'SELECT')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')
        """,
        (schema, name),
    ).fetchone()
    if row is None:
        return None
    return {"identity": row[0], "owned": bool(row[1]), "pk": bool(row[2]), "select": bool(row[3])}


def _pg_tables(conn: psycopg.Connection[Any], target: Target) -> list[Check]:
    if not target.tables:
        return []
    rows = {t: _pg_table_row(conn, t) for t in target.tables}
    missing = [t for t, r in rows.items() if r is None]
    unreadable = [t for t, r in rows.items() if r is not None and not r["select"]]
    # REPLICA IDENTITY DEFAULT uses the primary key; without one, UPDATE and DELETE on a
    # published table fail on the source itself.
    no_identity = [
        t
        for t, r in rows.items()
        if r is not None and (r["identity"] == "n" or (r["identity"] == "d" and not r["pk"]))
    ]
    found = len(rows) - len(missing)
    tables = Check(
        "tables",
        FAIL if missing or unreadable else PASS,
        f"missing: {_listing(missing)}"
        if missing
        else f"not readable: {_listing(unreadable)}"
        if unreadable
        else f"{found}/{len(rows)} found and readable",
        "every listed table exists and is readable (SELECT, for the snapshot)",
        f'GRANT SELECT ON {_listing(unreadable, 3)} TO "{target.user}";'
        if unreadable and not missing
        else "check spec.tables"
        if missing
        else "",
    )
    identity = Check(
        "replica_identity",
        FAIL if no_identity else PASS,
        f"no primary key or replica identity: {_listing(no_identity)}"
        if no_identity
        else "all tables have a primary key or REPLICA IDENTITY",
        "primary key or REPLICA IDENTITY FULL/INDEX",
        f"ALTER TABLE {no_identity[0]} REPLICA IDENTITY FULL; (or add a primary key)"
        if no_identity
        else "",
    )
    return [tables, identity]


@dataclass(frozen=True)
class SlotDrop:
    outcome: Literal["dropped", "absent", "active", "failed"]
    message: str = ""


def drop_postgres_slot(target: Target, slot: str, publication: str | None) -> SlotDrop:
    """Drop a connector's replication slot (and its own publication). An active slot is
    left alone: the connector's task still holds it and will let go shortly."""
    try:
        with _pg_connect(target) as conn:
            row = conn.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            if publication:
                conn.execute(
                    sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(publication))
                )
            if row is None:
                return SlotDrop("absent")
            if row[0]:
                return SlotDrop("active", f"slot {slot} is still in use")
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            return SlotDrop("dropped")
    except psycopg.errors.ObjectInUse:
        return SlotDrop("active", f"slot {slot} is still in use")
    except psycopg.Error as err:
        return SlotDrop("failed", _pg_failure(err, target).message)


# --- MySQL / MariaDB ----------------------------------------------------------------------

MYSQL_AUTH_ERRORS = {1045, 1044, 1698, 1251}
MYSQL_DB_ERRORS = {1049}
MYSQL_NO_TLS = 2026  # client error: TLS required but the server offers none


def _my_connect(target: Target) -> pymysql.connections.Connection[Any]:
    """Log in with the TLS mode's semantics; "prefer" falls back to plain text when the
    server has no TLS (pymysql itself refuses that)."""
    kwargs: dict[str, Any] = {
        "host": target.host,
        "port": target.port,
        "user": target.user,
        "password": target.password,
        "database": target.database,
        "connect_timeout": max(2, int(target.timeout)),
        "read_timeout": max(2, int(target.timeout)),
        "write_timeout": max(2, int(target.timeout)),
        "charset": "utf8mb4",
    }
    if target.tls_mode == "disable":
        return pymysql.connect(**kwargs)
    verify = target.tls_mode in ("verify-ca", "verify-full")
    ssl: dict[str, Any] = {
        "check_hostname": target.tls_mode == "verify-full",
        "verify_mode": verify,
    }
    if verify and target.ca_pem:
        ssl["ca"] = ca_file(target.ca_pem)
    try:
        return pymysql.connect(**kwargs, ssl=ssl)
    except pymysql.err.OperationalError as err:
        if target.tls_mode == "prefer" and err.args and err.args[0] == MYSQL_NO_TLS:
            return pymysql.connect(**kwargs)
        raise


def _my_failure(err: pymysql.err.MySQLError, target: Target) -> Result:
    code = err.args[0] if err.args and isinstance(err.args[0], int) else None
    text = str(err.args[1]) if len(err.args) > 1 else str(err)
    if code in MYSQL_AUTH_ERRORS:
        reason = Reason.AUTHENTICATION_FAILED
    elif code in MYSQL_DB_ERRORS:
        reason = Reason.DATABASE_NOT_FOUND
    else:
        reason = Reason.UNREACHABLE
    return Result(False, reason, _clean(f"({code}) {text}" if code else text, target))


def mysql(target: Target) -> Result:
    try:
        with _my_connect(target) as conn, conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            version = str(cur.fetchone()[0])
            checks = _my_checks(cur, target, version)
    except pymysql.err.MySQLError as err:
        return _my_failure(err, target)
    except OSError as err:
        return Result(False, Reason.UNREACHABLE, _clean(str(err), target))
    return Result(True, Reason.CONNECTED, "login succeeded", version, checks)


def _my_vars(cur: Any, names: Iterable[str]) -> dict[str, str]:
    wanted = list(names)
    cur.execute(
        "SHOW GLOBAL VARIABLES WHERE Variable_name IN (" + ",".join(["%s"] * len(wanted)) + ")",
        wanted,
    )
    return {str(k).lower(): str(v) for k, v in cur.fetchall()}


def _my_checks(cur: Any, target: Target, version: str) -> list[Check]:
    mariadb = "mariadb" in version.lower()
    variables = _my_vars(
        cur, ["log_bin", "binlog_format", "binlog_row_image", "gtid_mode", "gtid_strict_mode"]
    )
    checks = [
        _my_flavor(target, version, mariadb),
        _my_var(variables, "log_bin", "ON", "enable the binary log (log_bin) and restart"),
        _my_var(
            variables, "binlog_format", "ROW", "SET GLOBAL binlog_format = 'ROW' (and in my.cnf)"
        ),
        _my_var(
            variables,
            "binlog_row_image",
            "FULL",
            "SET GLOBAL binlog_row_image = 'FULL' (and in my.cnf)",
        ),
        _my_gtid(variables, target, mariadb),
        *_my_grants(cur, target),
        *_my_tables(cur, target),
    ]
    return checks


def _my_flavor(target: Target, version: str, mariadb: bool) -> Check:
    want_maria = target.type == "mariadb"
    ok = want_maria == mariadb
    return Check(
        "server_flavor",
        PASS if ok else FAIL,
        version,
        "MariaDB" if want_maria else "MySQL",
        ""
        if ok
        else f"set type: {'mariadb' if mariadb else 'mysql'} (Debezium has separate MySQL and MariaDB connectors)",
    )


def _my_var(variables: dict[str, str], name: str, want: str, hint: str) -> Check:
    have = variables.get(name, "")
    ok = have.upper() == want
    return Check(name, PASS if ok else FAIL, have or "(unset)", want, "" if ok else hint)


def _my_gtid(variables: dict[str, str], target: Target, mariadb: bool) -> Check:
    """Noted, not required (unless spec.mysql.requireGtid): GTIDs make failover safe."""
    if mariadb:
        return Check(
            "gtid_mode",
            PASS,
            f"MariaDB GTID (always on), gtid_strict_mode={variables.get('gtid_strict_mode', '?')}",
            "GTID positions",
        )
    mode = variables.get("gtid_mode", "OFF")
    on = mode.upper() == "ON"
    status = PASS if on else FAIL if target.require_gtid else WARN
    return Check(
        "gtid_mode",
        status,
        mode,
        "ON" + (" (requireGtid)" if target.require_gtid else " (recommended)"),
        ""
        if on
        else "SET gtid_mode=ON with enforce_gtid_consistency=ON for failover-safe positions",
    )


def _my_privileges(cur: Any) -> tuple[str, set[str]]:
    """The current account's global privileges (USER_PRIVILEGES, not SHOW GRANTS: that one
    prints the password hash)."""
    cur.execute("SELECT CURRENT_USER()")
    user, _, host = str(cur.fetchone()[0]).rpartition("@")
    grantee = f"'{user}'@'{host}'"
    cur.execute(
        "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = %s",
        (grantee,),
    )
    return grantee, {str(r[0]).upper() for r in cur.fetchall()}


def _my_grants(cur: Any, target: Target) -> list[Check]:
    grantee, privs = _my_privileges(cur)
    # MariaDB 10.5+ renamed REPLICATION CLIENT to BINLOG MONITOR (the old name is an alias).
    have_client = bool(privs & {"REPLICATION CLIENT", "BINLOG MONITOR"})
    repl_missing = [
        p
        for p, ok in (
            ("REPLICATION SLAVE", "REPLICATION SLAVE" in privs),
            ("REPLICATION CLIENT", have_client),
        )
        if not ok
    ]
    out = [
        Check(
            "replication_privileges",
            FAIL if repl_missing else PASS,
            f"missing {', '.join(repl_missing)}"
            if repl_missing
            else "REPLICATION SLAVE, REPLICATION CLIENT",
            "REPLICATION SLAVE, REPLICATION CLIENT on *.*",
            f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO {grantee};"
            if repl_missing
            else "",
        )
    ]
    select_ok = "SELECT" in privs or _my_schema_select(cur, grantee, target)
    out.append(
        Check(
            "select_privilege",
            PASS if select_ok else FAIL,
            "SELECT granted" if select_ok else "no SELECT on the captured databases",
            "SELECT on the captured tables",
            "" if select_ok else f"GRANT SELECT ON *.* TO {grantee};",
        )
    )
    snapshot_missing = [p for p in ("RELOAD", "SHOW DATABASES") if p not in privs]
    out.append(
        Check(
            "snapshot_privileges",
            WARN if snapshot_missing else PASS,
            f"missing {', '.join(snapshot_missing)}"
            if snapshot_missing
            else "RELOAD, SHOW DATABASES",
            "RELOAD, SHOW DATABASES (consistent snapshots)",
            f"GRANT RELOAD, SHOW DATABASES ON *.* TO {grantee}; or set snapshot.locking.mode=none"
            if snapshot_missing
            else "",
        )
    )
    return out


def _my_schema_select(cur: Any, grantee: str, target: Target) -> bool:
    databases = sorted({split_table(t)[0] for t in target.tables} or {target.database})
    cur.execute(
        "SELECT DISTINCT TABLE_SCHEMA FROM information_schema.SCHEMA_PRIVILEGES "
        "WHERE GRANTEE = %s AND PRIVILEGE_TYPE = 'SELECT'",
        (grantee,),
    )
    granted = {str(r[0]) for r in cur.fetchall()}
    return all(d in granted for d in databases)


def _my_tables(cur: Any, target: Target) -> list[Check]:
    if not target.tables:
        return []
    missing, no_pk = [], []
    for table in target.tables:
        schema, name = split_table(table)
        cur.execute(
            # COLUMNS, not TABLE_CONSTRAINTS: MariaDB hides constraints from SELECT-only users.
            "SELECT (SELECT COUNT(*) FROM information_schema.COLUMNS c "
            "        WHERE c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME "
            "          AND c.COLUMN_KEY = 'PRI') "
            "FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = %s AND t.TABLE_NAME = %s",
            (schema, name),
        )
        row = cur.fetchone()
        if row is None:
            missing.append(table)
        elif not row[0]:
            no_pk.append(table)
    return [
        Check(
            "tables",
            FAIL if missing else PASS,
            f"missing: {_listing(missing)}"
            if missing
            else f"{len(target.tables)}/{len(target.tables)} found",
            "every listed table exists (and is visible to the user)",
            "check spec.tables and the user's grants" if missing else "",
        ),
        Check(
            "primary_keys",
            WARN if no_pk else PASS,
            f"no primary key: {_listing(no_pk)}" if no_pk else "all tables have a primary key",
            "a primary key (change events are keyed by it)",
            "add a primary key, or set message.key.columns for these tables" if no_pk else "",
        ),
    ]
