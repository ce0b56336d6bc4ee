"""A STAND-IN for SQL Server's ``sqlcmd``: records each call, answers the listing queries with canned rows.

Copied as ``sqlcmd`` (with a ``#!`` line for this Python) into a folder on PATH by the tests. Beside it,
``state.json`` says what the "server" holds; every call appends to ``calls.jsonl``: argv, the names
(never values) of the SQLCMD* environment variables, a SHA-256 of SQLCMDPASSWORD, and the SQL. A
BACKUP writes a deterministic .bak into the folder its ``TO DISK`` path maps to; a RESTORE records
what the .bak it was given held. It proves the command lines and T-SQL ncbackup sends, not that a
real SQL Server accepts them.
"""

import hashlib
import json
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATE = json.loads((HERE / "state.json").read_text(encoding="utf-8"))


def bak_bytes(database: str, kind: str) -> bytes:
    """What the fake server writes for a backup: a few MB derived from the database name."""
    block = hashlib.sha256(f"{kind}:{database}".encode()).digest() * 2048
    return (block * (STATE.get("bak_blocks", 40)))[: STATE.get("bak_size", 2 * 1024 * 1024 + 5)]


def hex16(text: str) -> str:
    return text.encode("utf-16-le").hex().upper()


def local_path(server_path: str) -> Path:
    """The file a server path names here: SERVER_BACKUP_FOLDER (as the server spells it) maps to BACKUP_FOLDER."""
    for server_folder, folder in STATE.get("folders", {}).items():
        if server_path.startswith(server_folder):
            rest = server_path[len(server_folder):].lstrip("\\/")
            return Path(folder) / rest
    return Path(server_path)


def fail(message: str) -> None:
    print(f"Msg 3201, Level 16, State 1, Server FAKE, Line 1\n{message}", file=sys.stderr)
    print("Msg 3013, Level 16, State 1, Server FAKE, Line 1\nBACKUP DATABASE is terminating abnormally.", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    args = sys.argv[1:]
    sql = args[args.index("-Q") + 1] if "-Q" in args else None
    password = os.environ.get("SQLCMDPASSWORD")
    record = {
        "argv": args,
        "env_keys": sorted(key for key in os.environ if key.startswith("SQLCMD")),
        "password_sha256": hashlib.sha256(password.encode()).hexdigest() if password is not None else None,
        "sql": sql,
    }
    calls = HERE / "calls.jsonl"
    if sql is None:
        with calls.open("a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        print("usage: sqlcmd (stand-in)")
        return
    disk = re.search(r"DISK = N'((?:[^']|'')*)'", sql)
    path = local_path(disk.group(1).replace("''", "'")) if disk else None
    if path is not None:
        record["local_path"] = str(path)
    if sql.startswith("RESTORE "):
        record["bak_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest() if path and path.exists() else None
    with calls.open("a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")

    if STATE.get("login_fails"):
        print("Sqlcmd: Error: Microsoft ODBC Driver 18 for SQL Server : Login failed for user 'backup'..", file=sys.stderr)
        sys.exit(1)
    if "SERVERPROPERTY('ProductVersion')" in sql:
        info = STATE["server"]
        print("|".join([info["version"], str(info["engine_edition"]), info["edition"],
                        hex16(info["data"]) if info.get("data") else "NULL", hex16(info["log"]) if info.get("log") else "NULL"]))
    elif "FROM sys.databases ORDER BY name" in sql:
        for name, state, recovery, snapshot in STATE["databases"]:
            print(f"{hex16(name)}|{state}|{recovery}|{1 if snapshot else 0}")
    elif sql.startswith("SET NOCOUNT ON; SELECT COUNT(*) FROM sys.databases"):
        print(sum(1 for name in STATE.get("existing", []) if sql.endswith("N'" + name.replace("'", "''") + "'")))
    elif sql.startswith("BACKUP "):
        kind = sql.split(" ", 2)[1]
        database = re.match(r"BACKUP \w+ \[((?:[^\]]|\]\])*)\]", sql).group(1).replace("]]", "]")
        if database in STATE.get("fail_backup", []):
            if STATE.get("write_before_failing"):
                path.write_bytes(bak_bytes(database, kind)[:1000])
            fail(f"Cannot open backup device '{disk.group(1)}'. Operating system error 5(Access is denied.).")
        if "COMPRESSION" in sql and STATE["server"]["engine_edition"] == 4:
            fail("BACKUP DATABASE WITH COMPRESSION is not supported on Express Edition (64-bit).")
        if not STATE.get("server_writes_elsewhere"):
            path.write_bytes(bak_bytes(database, kind))
        print(f"Processed 1234 pages for database '{database}', file 'x' on file 1.")
    elif sql.startswith("SET NOCOUNT ON; RESTORE FILELISTONLY"):
        for row in STATE["file_list"]:
            print("|".join(row + ["PRIMARY", "8388608", "35184372080640", "1", "0", "0"]))
    elif sql.startswith("RESTORE DATABASE"):
        if STATE.get("fail_restore"):
            print("Msg 3154, Level 16, State 4, Server FAKE, Line 1\nThe backup set holds a backup of a database other "
                  "than the existing database.", file=sys.stderr)
            sys.exit(1)
        print("RESTORE DATABASE successfully processed 1234 pages in 0.1 seconds.")
    else:
        print(f"Msg 102, Level 15, State 1, Server FAKE, Line 1\nstand-in does not know: {sql[:60]}", file=sys.stderr)
        sys.exit(1)


main()
