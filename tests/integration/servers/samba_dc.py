"""A throwaway Samba AD domain controller: provisioned in a temporary folder, optionally run in a network namespace.

Provisioning takes seconds. The daemon binds the fixed AD ports (53, 88, 389, 445, ...), so it runs in a
network namespace of its own (``unshare -n``): nothing on the machine is disturbed, and a program that
should reach it is started in the same namespace with ``nsenter -t PID -n``.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.integration.servers.background import Background, start_background

REALM = "NCB.TEST"
DOMAIN = "NCB"
ADMIN_PASSWORD = "Adm1n!pass-ncb"    # test-only domain, never reachable from outside the namespace
USERS = {"alice": "Al1ce!pass-ncb", "bob": "B0b!pass-ncb-42"}
GROUP = "Backup Operators NCB"


@dataclass
class SambaDC:
    folder: Path

    @property
    def smb_conf(self) -> Path:
        return self.folder / "etc" / "smb.conf"

    def tool(self, *args: str, timeout_seconds: float = 120) -> str:
        """Run samba-tool against this DC's files; return its output, raise on failure."""
        done = subprocess.run(["samba-tool", *args, f"--configfile={self.smb_conf}"], capture_output=True, text=True,
                              timeout=timeout_seconds, check=False)
        if done.returncode != 0:
            raise AssertionError(f"samba-tool {' '.join(args)} failed: {done.stdout}{done.stderr}")
        return done.stdout


def provision(folder: Path, *, host_name: str = "dc1") -> SambaDC:
    """A new domain NCB.TEST in folder with two users in one group; its daemon, if started, listens on lo only."""
    done = subprocess.run(
        ["samba-tool", "domain", "provision", f"--targetdir={folder}", f"--realm={REALM}", f"--domain={DOMAIN}",
         f"--adminpass={ADMIN_PASSWORD}", "--dns-backend=SAMBA_INTERNAL", "--server-role=dc", "--use-rfc2307",
         f"--host-name={host_name}", "--option=interfaces = lo", "--option=bind interfaces only = yes",
         f"--option=log file = {folder}/log.%m", "--option=dns forwarder = 127.0.0.1"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"samba-tool domain provision failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    dc = SambaDC(folder)
    dc.tool("group", "add", GROUP)
    for user, password in USERS.items():
        dc.tool("user", "add", user, password)
        dc.tool("group", "addmembers", GROUP, user)
    return dc


def users_of(smb_conf: Path) -> set[str]:
    """The user names a DC's database holds (read from its files, no daemon needed)."""
    done = subprocess.run(["samba-tool", "user", "list", f"--configfile={smb_conf}"], capture_output=True, text=True,
                          timeout=120, check=True)
    return set(done.stdout.split())


def members_of(smb_conf: Path, group: str) -> set[str]:
    done = subprocess.run(["samba-tool", "group", "listmembers", group, f"--configfile={smb_conf}"], capture_output=True,
                          text=True, timeout=120, check=True)
    return set(done.stdout.split())


def _listening_ports(pid: int) -> set[int]:
    """TCP ports in LISTEN state in the network namespace of process pid (/proc/PID/net/tcp is per namespace)."""
    ports = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def start_in_namespace(dc: SambaDC, *, timeout_seconds: float = 90) -> Background:
    """Run the DC's samba daemon in a new network namespace (lo up); return once LDAP, RPC and SMB listen."""
    daemon = start_background(
        ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec samba --foreground --no-process-group -s "$0"',
         str(dc.smb_conf)],
        output_path=dc.folder / "daemon.out",
    )
    deadline = time.monotonic() + timeout_seconds
    while not {389, 135, 445} <= _listening_ports(daemon.pid):
        if not daemon.is_running() or time.monotonic() > deadline:
            daemon.stop()
            raise AssertionError(f"samba did not start: {(dc.folder / 'daemon.out').read_text()[-2000:]}")
        time.sleep(0.5)
    return daemon
