"""Finding the parts of an encrypted file the way the original's OBJECTIVES did, without its sorting bugs."""

from __future__ import annotations

import pytest

from ncbackup.commands.decrypt import detect_format, find_parts
from ncbackup.errors import ConfigError, DecryptError


def _touch(folder, *names):
    for name in names:
        (folder / name).write_bytes(b"x")


def test_prefix_takes_parts_in_numeric_order_past_999(tmp_path):
    names = [f"b.crypt.{i:03d}" for i in range(1002)]
    _touch(tmp_path, *names, "b.crypt.sha256", "other.000")
    parts = find_parts(tmp_path / "b.crypt")
    assert [p.name for p in parts] == names
    assert parts[1000].name == "b.crypt.1000"


def test_part_000_brings_its_siblings_and_a_lone_file_stays_alone(tmp_path):
    _touch(tmp_path, "a.000", "a.001", "a.002", "single.000")
    assert [p.name for p in find_parts(tmp_path / "a.000")] == ["a.000", "a.001", "a.002"]
    assert [p.name for p in find_parts(tmp_path / "single.000")] == ["single.000"]
    assert [p.name for p in find_parts(tmp_path / "a.001")] == ["a.001"]


def test_gnu_split_letter_suffixes_are_found_in_order(tmp_path):
    _touch(tmp_path, "x.cryptab", "x.cryptaa", "x.cryptac")
    assert [p.name for p in find_parts(tmp_path / "x.crypt")] == ["x.cryptaa", "x.cryptab", "x.cryptac"]


def test_gap_in_numbering_names_the_missing_part(tmp_path):
    _touch(tmp_path, "g.000", "g.001", "g.003")
    with pytest.raises(DecryptError, match="part number 2 is missing"):
        find_parts(tmp_path / "g")


def test_nothing_found_says_what_was_looked_for(tmp_path):
    with pytest.raises(DecryptError, match=r"no file .*nothing and no parts nothing\.000"):
        find_parts(tmp_path / "nothing")


@pytest.mark.parametrize("head,expected", [
    (b"age-encryption.org/v1\n-> X25519", "age"),
    (b"-----BEGIN AGE ENCRYPTED FILE-----\n", "age"),
    (b"Salted__\x01\x02\x03\x04\x05\x06\x07\x08", "openssl-legacy"),
    (b"\x8c\x0d\x04\x07\x03\x02", "gpg"),
    (b"\xc3\x0d\x04\x07\x03\x02", "gpg"),
])
def test_format_is_recognised_from_first_bytes(head, expected):
    assert detect_format(head, what="x") == expected


def test_unknown_format_is_refused():
    with pytest.raises(DecryptError, match="not in a format ncbackup decrypts"):
        detect_format(b"hello world", what="x")


def test_any_prefix_of_the_part_names_finds_the_one_file_they_belong_to(tmp_path):
    """The original's README: "the software assumes you mean wild card (*) at the end" of OBJECTIVES."""
    _touch(tmp_path, "20171106_105027.tar.gz.crypt.000", "20171106_105027.tar.gz.crypt.001",
           "20171106_105027.tar.gz.crypt.sha256", "other.000")
    for prefix in ("2017", "20171106_105027.tar", "20171106_105027.tar.gz.crypt."):
        assert [p.name for p in find_parts(tmp_path / prefix)] == [
            "20171106_105027.tar.gz.crypt.000", "20171106_105027.tar.gz.crypt.001"
        ], prefix


def test_prefix_of_gnu_split_and_bare_number_parts(tmp_path):
    _touch(tmp_path, "x.cryptaa", "x.cryptab")
    assert [p.name for p in find_parts(tmp_path / "x.cr")] == ["x.cryptaa", "x.cryptab"]
    _touch(tmp_path, "y.crypt00", "y.crypt01", "y.crypt02")
    assert [p.name for p in find_parts(tmp_path / "y")] == ["y.crypt00", "y.crypt01", "y.crypt02"]


def test_prefix_matching_parts_of_two_files_is_refused_naming_both(tmp_path):
    _touch(tmp_path, "20171106_1.crypt.000", "20171106_1.crypt.001", "20171107_1.crypt.000")
    with pytest.raises(ConfigError, match=r"matches the parts of 2 files \(20171106_1\.crypt, 20171107_1\.crypt\)"):
        find_parts(tmp_path / "2017")
    # The exact common prefix of one file's parts still wins over a longer name sharing it.
    _touch(tmp_path, "a.crypt.000", "a.crypt2.000")
    assert [p.name for p in find_parts(tmp_path / "a.crypt")] == ["a.crypt.000"]
