"""age v1: our native writer/reader against the real `age` binary, both directions, and tamper detection."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest

from ncbackup.errors import DecryptError
from ncbackup.stages.age import CHUNK_BYTES, AgeStage
from ncbackup.stages.keys import generate_identity, read_key_file, write_identity_file
from tests.support import need_binary

SIZES = [0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES, 3 * CHUNK_BYTES + 17, 2_500_000]


def _data(size: int) -> bytes:
    # Half random, half text: both kinds of bytes, deterministic length.
    return os.urandom(size // 2) + (b"line of text\n" * (size // 13 + 1))[: size - size // 2]


def _encrypt(stage: AgeStage, data: bytes, *, write_sizes=(1, 70_000, 5, 1 << 20)) -> bytes:
    out = io.BytesIO()
    writer = stage.writer(out)
    position, turn = 0, 0
    while position < len(data):
        step = write_sizes[turn % len(write_sizes)]
        writer.write(data[position:position + step])
        position += step
        turn += 1
    writer.close()
    assert not out.closed, "closing the age writer must leave its sink open"
    return out.getvalue()


@pytest.fixture
def identity_file(tmp_path: Path) -> Path:
    path = tmp_path / "identity.txt"
    write_identity_file(path)
    return path


def _stage(path: Path) -> AgeStage:
    material = read_key_file(path)
    return AgeStage(recipients=material.recipients, identities=material.identities)


@pytest.mark.parametrize("size", SIZES)
def test_native_age_output_decrypts_with_age_binary(size: int, identity_file: Path, tmp_path: Path) -> None:
    age = need_binary("age")
    data = _data(size)
    encrypted = tmp_path / "data.age"
    encrypted.write_bytes(_encrypt(_stage(identity_file), data))
    result = subprocess.run([age, "-d", "-i", str(identity_file), str(encrypted)], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == data


@pytest.mark.parametrize("size", SIZES)
def test_age_binary_output_decrypts_natively(size: int, identity_file: Path, tmp_path: Path) -> None:
    age = need_binary("age")
    data = _data(size)
    stage = _stage(identity_file)
    encrypted = subprocess.run([age, "-r", stage.recipients[0]], input=data, capture_output=True, check=True).stdout
    assert stage.reader(io.BytesIO(encrypted)).read() == data


def test_age_binary_decrypts_stream_for_several_recipients(tmp_path: Path) -> None:
    age = need_binary("age")
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    write_identity_file(first)
    write_identity_file(second)
    recipients = read_key_file(first).recipients + read_key_file(second).recipients
    data = _data(300_000)
    encrypted = tmp_path / "data.age"
    encrypted.write_bytes(_encrypt(AgeStage(recipients=recipients), data))
    for identity in (first, second):
        result = subprocess.run([age, "-d", "-i", str(identity), str(encrypted)], capture_output=True, check=True)
        assert result.stdout == data


def test_write_only_server_encrypts_and_identity_decrypts(identity_file: Path, tmp_path: Path) -> None:
    recipients_only = tmp_path / "recipients.txt"
    public = read_key_file(identity_file).recipients[0]
    recipients_only.write_text(f"# backup key of ops\n{public}\n")
    server = read_key_file(recipients_only)
    assert server.kind == "recipients" and not server.can_decrypt
    data = _data(200_000)
    encrypted = _encrypt(AgeStage(recipients=server.recipients), data)
    with pytest.raises(DecryptError, match="only recipients"):
        AgeStage(recipients=server.recipients).reader(io.BytesIO(encrypted))
    assert _stage(identity_file).reader(io.BytesIO(encrypted)).read() == data


def test_wrong_identity_is_refused(identity_file: Path, tmp_path: Path) -> None:
    encrypted = _encrypt(_stage(identity_file), _data(10_000))
    other, _ = generate_identity()
    with pytest.raises(DecryptError, match="no identity in the key file"):
        AgeStage(identities=[other]).reader(io.BytesIO(encrypted)).read()


@pytest.mark.parametrize("cut_bytes", [1, 16, CHUNK_BYTES + 16, CHUNK_BYTES + 17])
def test_truncated_stream_is_detected(cut_bytes: int, identity_file: Path) -> None:
    stage = _stage(identity_file)
    encrypted = _encrypt(stage, _data(3 * CHUNK_BYTES + 100))
    with pytest.raises(DecryptError):
        stage.reader(io.BytesIO(encrypted[:-cut_bytes])).read()


def test_stream_cut_at_chunk_boundary_is_detected(identity_file: Path) -> None:
    stage = _stage(identity_file)
    data = _data(3 * CHUNK_BYTES)
    encrypted = _encrypt(stage, data)
    header_bytes = len(encrypted) - 3 * (CHUNK_BYTES + 16)
    # Drop the final chunk exactly: what is left ends on a non-final chunk.
    with pytest.raises(DecryptError, match="truncated|corrupted"):
        stage.reader(io.BytesIO(encrypted[: header_bytes + 2 * (CHUNK_BYTES + 16)])).read()


@pytest.mark.parametrize("where", ["header", "payload-start", "payload-middle", "last-byte"])
def test_flipped_bit_is_detected(where: str, identity_file: Path) -> None:
    stage = _stage(identity_file)
    encrypted = bytearray(_encrypt(stage, _data(500_000)))
    position = {
        "header": encrypted.index(b"---") - 5,
        "payload-start": encrypted.index(b"\n", encrypted.index(b"---")) + 20,
        "payload-middle": len(encrypted) // 2,
        "last-byte": len(encrypted) - 1,
    }[where]
    encrypted[position] ^= 0x01
    with pytest.raises(DecryptError):
        stage.reader(io.BytesIO(bytes(encrypted))).read()


def test_garbage_is_not_an_age_file(identity_file: Path) -> None:
    with pytest.raises(DecryptError, match="not an age"):
        _stage(identity_file).reader(io.BytesIO(b"Salted__12345678" + bytes(100))).read()


def test_ssh_ed25519_recipient_round_trips_with_age_binary(tmp_path: Path) -> None:
    ssh_keygen = need_binary("ssh-keygen")
    age = need_binary("age")
    key = tmp_path / "id_ed25519"
    subprocess.run([ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = (tmp_path / "id_ed25519.pub").read_text().strip()
    data = _data(300_000)
    encrypted = tmp_path / "data.age"
    encrypted.write_bytes(_encrypt(AgeStage(recipients=[public]), data))
    result = subprocess.run([age, "-d", "-i", str(key), str(encrypted)], capture_output=True, check=True)
    assert result.stdout == data
    identity = read_key_file(key)
    assert identity.kind == "ssh-identity"
    stage = AgeStage(identities=identity.identities)
    assert stage.reader(io.BytesIO(encrypted.read_bytes())).read() == data
    from_binary = subprocess.run([age, "-R", str(tmp_path / "id_ed25519.pub")], input=data, capture_output=True, check=True).stdout
    assert stage.reader(io.BytesIO(from_binary)).read() == data


def test_describe_names_fingerprints_never_keys(identity_file: Path) -> None:
    material = read_key_file(identity_file)
    described = repr(AgeStage(recipients=material.recipients, identities=material.identities).describe())
    assert material.recipients[0] not in described
    assert material.identities[0] not in described
    assert len(AgeStage(recipients=material.recipients).describe()["recipient_fingerprints"]) == 1


def test_ssh_rsa_recipient_round_trips_with_age_binary(tmp_path: Path) -> None:
    ssh_keygen = need_binary("ssh-keygen")
    age = need_binary("age")
    key = tmp_path / "id_rsa"
    subprocess.run([ssh_keygen, "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(key)], check=True)
    public = (tmp_path / "id_rsa.pub").read_text().strip()
    assert read_key_file(tmp_path / "id_rsa.pub").kind == "recipients"
    data = _data(CHUNK_BYTES * 2 + 5)
    encrypted = tmp_path / "data.age"
    encrypted.write_bytes(_encrypt(AgeStage(recipients=[public]), data))
    assert subprocess.run([age, "-d", "-i", str(key), str(encrypted)], capture_output=True, check=True).stdout == data
    stage = AgeStage(identities=read_key_file(key).identities)
    assert stage.reader(io.BytesIO(encrypted.read_bytes())).read() == data


def test_ssh_identity_reader_reports_wrong_key_and_can_stop_early(tmp_path: Path) -> None:
    ssh_keygen = need_binary("ssh-keygen")
    for name in ("right", "wrong"):
        subprocess.run([ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)], check=True)
    public = (tmp_path / "right.pub").read_text().strip()
    encrypted = _encrypt(AgeStage(recipients=[public]), _data(3_000_000))
    with pytest.raises(DecryptError, match="wrong key"):
        AgeStage(identities=read_key_file(tmp_path / "wrong").identities).reader(io.BytesIO(encrypted)).read()
    reader = AgeStage(identities=read_key_file(tmp_path / "right").identities).reader(io.BytesIO(encrypted))
    assert len(reader.read(1000)) == 1000
    reader.close()  # returns: the decrypting thread is not left blocked


class _ShortReads(io.RawIOBase):
    """A source returning reads of awkward sizes, as parts ending mid-chunk do."""

    def __init__(self, data: bytes, sizes: tuple[int, ...]) -> None:
        super().__init__()
        self._data = memoryview(data)
        self._sizes = sizes
        self._turn = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        step = min(size, self._sizes[self._turn % len(self._sizes)])
        self._turn += 1
        piece, self._data = self._data[:step], self._data[step:]
        return bytes(piece)


@pytest.mark.parametrize("size", SIZES + [40 * CHUNK_BYTES])
@pytest.mark.parametrize("read_sizes", [(1 << 20,), (CHUNK_BYTES + 16,), (1, 65551, 3 * (CHUNK_BYTES + 16) + 1, 7000)])
@pytest.mark.parametrize("buffered", [True, False])
def test_reader_decrypts_whatever_sizes_the_source_returns(size, read_sizes, buffered, identity_file: Path) -> None:
    stage = _stage(identity_file)
    data = _data(size)
    encrypted = _encrypt(stage, data)
    reader = stage.reader(_ShortReads(encrypted, read_sizes), buffered=buffered)
    pieces = []
    while piece := reader.read(300_000):
        pieces.append(bytes(piece))
    assert b"".join(pieces) == data


@pytest.mark.parametrize("cut_bytes", [1, 16, CHUNK_BYTES + 16, CHUNK_BYTES + 17])
def test_unbuffered_reader_detects_truncation_with_short_reads(cut_bytes: int, identity_file: Path) -> None:
    stage = _stage(identity_file)
    encrypted = _encrypt(stage, _data(5 * CHUNK_BYTES + 100))
    reader = stage.reader(_ShortReads(encrypted[:-cut_bytes], (1, 65551, 1 << 20)), buffered=False)
    with pytest.raises(DecryptError):
        while reader.read(1 << 20):
            pass
