"""A real OpenSSH server for tests: /usr/sbin/sshd on a free loopback port, generated keys, temp files.

The server accepts the current user (and, when the tests run as root, ``nobody`` for permission
tests) with the generated client key only; its host key is fresh for each session.
"""

from __future__ import annotations

import atexit
import getpass
import os
import shutil
import socket
import subprocess  # tests only: the package itself starts processes through ncbackup.process
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import need

SSHD = Path("/usr/sbin/sshd")


@dataclass(frozen=True)
class SshServer:
    host: str
    port: int
    user: str
    host_key_public: Path          # the server's ed25519 public key (OpenSSH format)
    client_key: Path               # private key the server accepts (no passphrase), 0600
    known_hosts: Path              # a known_hosts file holding the right host key
    folder: Path

    def known_hosts_line(self) -> str:
        key_type, key_data = self.host_key_public.read_text().split()[:2]
        return f"[{self.host}]:{self.port} {key_type} {key_data}\n"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ncbackup-test", "-f", str(path)],
        check=True, stdout=subprocess.DEVNULL,
    )


def _wait_for_banner(port: int, process: subprocess.Popen) -> None:
    for _ in range(200):  # bounded: about 10 s
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}: {process.stderr.read().decode()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                if connection.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("sshd did not answer")


def start_sshd(folder: Path, client_key: Path) -> tuple[SshServer, subprocess.Popen]:
    """Start sshd serving from folder, accepting client_key; return the server and its process."""
    need(SSHD.exists(), "/usr/sbin/sshd (openssh-server) is not installed")
    host_key = folder / "host_ed25519"
    _keygen(host_key)
    # sshd reads authorized_keys as the logging-in user (nobody, in the permission tests): keep the
    # public key where any user can read it, outside pytest's private temp folders.
    keys_folder = Path(tempfile.mkdtemp(prefix="ncbackup-sshd-keys-"))
    keys_folder.chmod(0o755)
    authorized_keys = keys_folder / "authorized_keys"
    authorized_keys.write_text(Path(f"{client_key}.pub").read_text())
    authorized_keys.chmod(0o644)
    atexit.register(shutil.rmtree, keys_folder, True)
    user = getpass.getuser()
    is_root = os.geteuid() == 0
    if is_root:
        # sshd's privilege separation needs this directory when started as root.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = _free_port()
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {host_key}",
        f"PidFile {folder / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized_keys}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "StrictModes no",
        "UsePAM no",
        "Subsystem sftp internal-sftp",
        f"AllowUsers {user} nobody" if is_root else f"AllowUsers {user}",
        "LogLevel ERROR",
        "",
    ]))
    process = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        _wait_for_banner(port, process)
    except BaseException:
        stop_sshd(process)
        raise
    server = SshServer(
        host="127.0.0.1", port=port, user=user, host_key_public=Path(f"{host_key}.pub"),
        client_key=client_key, known_hosts=folder / "known_hosts", folder=folder,
    )
    server.known_hosts.write_text(server.known_hosts_line())
    return server, process


def stop_sshd(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


_shared: SshServer | None = None


def shared_sshd() -> SshServer:
    """One sshd per test process, started on first use (for factories that cannot take fixtures)."""
    global _shared
    if _shared is None:
        need(shutil.which("ssh-keygen") is not None, "ssh-keygen (openssh-client) is not installed")
        folder = Path(tempfile.mkdtemp(prefix="ncbackup-sshd-"))
        client_key = folder / "id_ed25519"
        _keygen(client_key)
        server, process = start_sshd(folder, client_key)
        atexit.register(stop_sshd, process)
        atexit.register(shutil.rmtree, folder, True)
        _shared = server
    return _shared


@pytest.fixture(scope="session")
def ssh_client_key(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ssh-client")
    key = folder / "id_ed25519"
    need(shutil.which("ssh-keygen") is not None, "ssh-keygen (openssh-client) is not installed")
    _keygen(key)
    return key


@pytest.fixture(scope="session")
def sshd(tmp_path_factory, ssh_client_key):
    """One sshd for the session; yields an SshServer."""
    server, process = start_sshd(tmp_path_factory.mktemp("sshd"), ssh_client_key)
    try:
        yield server
    finally:
        stop_sshd(process)
