"""SQL Server statements and sqlcmd command lines as data: quoting, BACKUP/RESTORE text, MOVE clauses, login options."""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath

import pytest

from ncbackup.errors import BackupError, ConfigError, SourceError
from ncbackup.sources.mssql import (
    BackupFile,
    MssqlOptions,
    ServerInfo,
    SqlcmdClient,
    backup_sql,
    check_authentication,
    file_label,
    from_hex_utf16,
    move_clauses,
    parse_file_list,
    quote_identifier,
    quote_string,
    restore_sql,
    server_folder_path,
)


def options(**values: str) -> MssqlOptions:
    return MssqlOptions.model_validate({"BACKUP_FOLDER": "/srv/bak", **values})


def test_identifiers_double_the_closing_bracket_and_strings_double_the_quote():
    assert quote_identifier("x]; DROP DATABASE y--") == "[x]]; DROP DATABASE y--]"
    assert quote_identifier("[a]") == "[[a]]]"
    assert quote_string("D:\\O'Neil's\\x.bak") == "N'D:\\O''Neil''s\\x.bak'"


def test_backup_statements():
    assert backup_sql("DATABASE", "shop", "D:\\bak\\a.bak", compress=True) == \
        "BACKUP DATABASE [shop] TO DISK = N'D:\\bak\\a.bak' WITH COPY_ONLY, CHECKSUM, COMPRESSION"
    assert backup_sql("DATABASE", "a]b", "/var/opt/mssql/bak/a.bak", compress=False) == \
        "BACKUP DATABASE [a]]b] TO DISK = N'/var/opt/mssql/bak/a.bak' WITH COPY_ONLY, CHECKSUM"
    assert backup_sql("LOG", "shop", "D:\\bak\\a.trn", compress=False) == "BACKUP LOG [shop] TO DISK = N'D:\\bak\\a.trn' WITH CHECKSUM"


@pytest.mark.parametrize("name", ["a\nGO\nDROP DATABASE shop", "tab\there", "nul\0"])
def test_a_name_sqlcmd_would_split_is_refused(name):
    with pytest.raises(SourceError, match="line break or control character"):
        backup_sql("DATABASE", name, "D:\\bak\\a.bak", compress=False)


def test_sqlcmd_argv_with_a_login_and_with_integrated_auth():
    client = SqlcmdClient(options(USER="backup", CREDENTIALS_FILE="/etc/ncbackup/mssql.pass"))
    assert client.argv("SELECT 1") == [
        "sqlcmd", "-S", "localhost", "-d", "master", "-l", "10", "-b", "-r1", "-x", "-h-1", "-W", "-w", "65535",
        "-s", "|", "-U", "backup", "-Q", "SELECT 1",
    ]
    client = SqlcmdClient(options(INTEGRATED_AUTH="true", HOST="db1", INSTANCE="SQLEXPRESS", SQLCMD="C:\\Tools\\sqlcmd.exe",
                                  TRUST_SERVER_CERTIFICATE="true"))
    argv = client.argv("SELECT 1")
    assert argv[:3] == ["C:\\Tools\\sqlcmd.exe", "-S", "db1\\SQLEXPRESS"] and argv[-4:] == ["-E", "-C", "-Q", "SELECT 1"]
    assert SqlcmdClient(options(INTEGRATED_AUTH="yes", PORT="14330")).server == "localhost,14330"


def test_integrated_auth_sets_no_password_variable(monkeypatch):
    monkeypatch.delenv("SQLCMDPASSWORD", raising=False)
    assert "SQLCMDPASSWORD" not in SqlcmdClient(options(INTEGRATED_AUTH="true")).environment()


def test_password_file_goes_to_the_environment_only(tmp_path):
    secret = tmp_path / "pass"
    secret.write_text("s3cret pass\nignored\n")
    client = SqlcmdClient(options(USER="backup", CREDENTIALS_FILE=str(secret)))
    assert client.environment()["SQLCMDPASSWORD"] == "s3cret pass"
    assert "s3cret" not in " ".join(client.argv("SELECT 1"))
    (tmp_path / "empty").write_text("")
    with pytest.raises(SourceError, match="credentials file .*empty is missing, unreadable or empty; fix CREDENTIALS_FILE"):
        SqlcmdClient(options(USER="backup", CREDENTIALS_FILE=str(tmp_path / "empty"))).environment()


@pytest.mark.parametrize(("values", "message"), [
    ({}, "set USER and CREDENTIALS_FILE, or INTEGRATED_AUTH true"),
    ({"USER": "sa"}, "USER needs CREDENTIALS_FILE"),
    ({"USER": "sa", "CREDENTIALS_FILE": "/x", "INTEGRATED_AUTH": "true"}, "USER and INTEGRATED_AUTH exclude each other"),
])
def test_one_way_to_log_in(values, message):
    with pytest.raises(ConfigError, match=message):
        check_authentication(options(**values))


def test_compression_by_edition():
    def info(engine_edition: int, edition: str) -> ServerInfo:
        return ServerInfo("16.0", engine_edition, edition, None, None)

    assert info(3, "Enterprise Edition: Core-based Licensing (64-bit)").has_compression
    assert info(3, "Developer Edition (64-bit)").has_compression
    assert info(2, "Standard Edition (64-bit)").has_compression
    assert not info(2, "Web Edition (64-bit)").has_compression
    assert not info(4, "Express Edition (64-bit)").has_compression


def test_server_folders_keep_the_servers_path_style():
    assert server_folder_path("D:\\bak") == PureWindowsPath("D:\\bak")
    assert str(server_folder_path("\\\\nas\\share\\bak") / "a.bak") == "\\\\nas\\share\\bak\\a.bak"
    assert server_folder_path("/var/opt/mssql/bak") == PurePosixPath("/var/opt/mssql/bak")


def test_names_in_file_names_are_labels():
    assert file_label("x]; DROP DATABASE y--") == "x-DROP-DATABASE-y"
    assert file_label("../../etc") == "etc"
    assert file_label("日本") == "db"
    assert len(file_label("a" * 200)) == 60


def test_hex_names_decode_as_utf16():
    assert from_hex_utf16("730068006F007000") == "shop"
    assert from_hex_utf16("x]".encode("utf-16-le").hex().upper()) == "x]"
    assert from_hex_utf16("日本\n".encode("utf-16-le").hex()) == "日本\n"


def test_move_clauses_name_files_after_the_new_database():
    files = [BackupFile("shop", "C:\\DATA\\shop.mdf", "D"), BackupFile("shop_log", "C:\\DATA\\shop_log.ldf", "L"),
             BackupFile("Shop", "C:\\DATA\\shop2.ndf", "D"), BackupFile("fs", "C:\\DATA\\fs", "S")]
    assert move_clauses(files, "new'db", data_folder="D:\\SQLData\\", log_folder="/var/opt/mssql/log") == [
        "MOVE N'shop' TO N'D:\\SQLData\\new-db_shop.mdf'",
        "MOVE N'shop_log' TO N'/var/opt/mssql/log/new-db_shop_log.ldf'",
        "MOVE N'Shop' TO N'D:\\SQLData\\new-db_Shop_2.ndf'",
        "MOVE N'fs' TO N'D:\\SQLData\\new-db_fs'",
    ]


def test_restore_statement():
    moves = ["MOVE N'a' TO N'D:\\a.mdf'"]
    assert restore_sql("a]b", "D:\\bak\\r.bak", moves, replace=False) == \
        "RESTORE DATABASE [a]]b] FROM DISK = N'D:\\bak\\r.bak' WITH CHECKSUM, MOVE N'a' TO N'D:\\a.mdf', RECOVERY"
    assert restore_sql("a", "D:\\r.bak", moves, replace=True).endswith("MOVE N'a' TO N'D:\\a.mdf', REPLACE, RECOVERY")


def test_file_list_rows_are_checked():
    rows = [["shop", "C:\\DATA\\shop.mdf", "D", "PRIMARY"], ["shop_log", "C:\\DATA\\shop_log.ldf", "L", "NULL"]]
    assert parse_file_list(rows) == [BackupFile("shop", "C:\\DATA\\shop.mdf", "D"), BackupFile("shop_log", "C:\\DATA\\shop_log.ldf", "L")]
    with pytest.raises(BackupError, match="cannot read"):
        parse_file_list([["we", "ird|name", "C:\\x.mdf", "D"]])
    with pytest.raises(BackupError, match="listed no file"):
        parse_file_list([])
