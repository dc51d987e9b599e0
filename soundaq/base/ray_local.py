"""A throw-away Ray cluster of several nodes on this machine's loopback (tests, benchmark/perf, trying
``--engine ray --address``), and a check that Ray's traffic stays on the loopback.

:class:`LoopbackCluster` starts a head node with ``ray start --head`` and joins further nodes with
``ray start --address``, every one with ``--node-ip-address 127.0.0.1`` and
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` in its environment: with that variable unset, Ray resolves
127.0.0.1 to the machine's network address and the nodes and the driver connect to it (measured with
ray 2.60); set to 0, Ray's ``get_node_ip_address`` returns the loopback address. Ray's ``ray start``
refuses to *join* a node while that variable is 0 (the check is meant for Windows and macOS), so the
joining ``ray start`` runs through Ray's own command-line entry point with only that check's flag
turned on for the command; the addresses its node uses still resolve through the variable to 127.0.0.1.

Each node is started in its own session (``setsid``; its worker processes get process groups of their
own but stay in that session), and :meth:`LoopbackCluster.stop` ends the processes of those sessions,
each by its id (SIGTERM, then SIGKILL): never ``ray stop``, which ends every Ray process of the user on
the machine.
The driver (the process calling ``ray.init``) needs the variable too, set before Ray is first imported:
:func:`keep_driver_on_loopback`.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from soundaq.base.engine import LOOPBACK_ENV

_CLI = "import sys; from ray.scripts.scripts import main; sys.exit(main())"
_JOIN_CLI = ("import sys, types; import ray._private.ray_constants as c; import ray.scripts.scripts as s; "
             "p = types.ModuleType('ray_constants'); p.__dict__.update(vars(c)); p.ENABLE_RAY_CLUSTER = True; "
             "s.ray_constants = p; sys.exit(s.main())")


def keep_driver_on_loopback() -> None:
    """Set ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` for this process; raises RuntimeError when Ray was
    already imported with another value (Ray reads the variable once, at import).
    """
    os.environ[LOOPBACK_ENV] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None and constants.ENABLE_RAY_CLUSTER:  # type: ignore[attr-defined]
        raise RuntimeError(f"Ray was imported before {LOOPBACK_ENV}=0 was set; set it before importing ray")


class LoopbackCluster:
    """``nodes`` Ray nodes of ``cpus`` CPUs and ``object_store_mb`` MB of object store each, on 127.0.0.1.

    ``address`` (``127.0.0.1:PORT``) is what ``--address`` takes, from a driver whose environment has
    ``auth_env`` (the cluster's token; :meth:`drive_from_here` sets it for this process); ``sessions`` are the session ids of
    the nodes (every Ray process of this cluster, its workers included, is in one of them). Use as a
    context manager, or call start() and stop().
    """

    def __init__(self, nodes: int = 2, cpus: int = 1, object_store_mb: int = 80, timeout_s: float = 120):
        self.nodes, self.cpus, self.object_store_mb, self.timeout_s = nodes, cpus, object_store_mb, timeout_s
        self.sessions: list[int] = []
        self.address: str | None = None
        # A token only this cluster and its drivers know (Ray's token authentication), given in the
        # environment: nothing is read from or written to ~/.ray/auth_token.
        self.auth_env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        self._tmp = tempfile.TemporaryDirectory(prefix="soundaq-ray-")
        # Ray's socket paths must stay under 107 bytes: a short temp folder
        self.temp_dir = self._tmp.name

    def _ray_start(self, code: str, *args: str) -> None:
        env = {**os.environ, LOOPBACK_ENV: "0", "RAY_USAGE_STATS_ENABLED": "0", **self.auth_env}
        cmd = [sys.executable, "-c", code, "start", "--node-ip-address", "127.0.0.1", "--num-cpus", str(self.cpus),
               "--num-gpus", "0", "--object-store-memory", str(self.object_store_mb * 1_000_000),
               "--temp-dir", self.temp_dir, "--disable-usage-stats", *args]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        self.sessions.append(proc.pid)   # the daemons it starts, and their workers, stay in this session
        out, _ = proc.communicate(timeout=self.timeout_s)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start failed ({proc.returncode}):\n{out[-2000:]}")

    def start(self) -> LoopbackCluster:
        """Start the head node and join the other nodes (``cpus`` CPUs each, on 127.0.0.1); records the head's address.
        RuntimeError when ``ray start`` fails.
        """
        self._ray_start(_CLI, "--head", "--port", "0", "--include-dashboard", "false")
        self.address = (Path(self.temp_dir) / "ray_current_cluster").read_text().strip()
        for _ in range(self.nodes - 1):
            self._ray_start(_JOIN_CLI, "--address", self.address)
        return self

    def drive_from_here(self) -> None:
        """Let this process be a driver of the cluster: the loopback variable and the cluster's token, set
        before Ray is first imported (Ray reads both once per process); RuntimeError when it was.
        """
        keep_driver_on_loopback()
        if "ray" in sys.modules and os.environ.get("RAY_AUTH_TOKEN") != self.auth_env["RAY_AUTH_TOKEN"]:
            raise RuntimeError("Ray was imported before the cluster's token was set; start the cluster first")
        os.environ.update(self.auth_env)

    def stop(self, grace_s: float = 3.0) -> None:
        """End this cluster's processes (SIGTERM, SIGKILL after ``grace_s``) and remove its files."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.live_pids():
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline and self.live_pids():
                time.sleep(0.2)
        self._tmp.cleanup()

    def unit_workers(self) -> list[int]:
        """Ray worker processes of this cluster running a soundaq unit (Ray titles them ``ray::_ray_unit``)."""
        pids = []
        for pid in self.live_pids():
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            except OSError:
                continue
            if title.startswith("ray::_ray_unit"):
                pids.append(pid)
        return pids

    def live_pids(self) -> list[int]:
        """Processes (not zombies) of this cluster's sessions."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[3]) in self.sessions:   # state, ppid, pgrp, session
                pids.append(int(entry.name))
        return pids

    def __enter__(self) -> LoopbackCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def _ip(hex_addr: str) -> str:
    """An address of /proc/net/tcp{,6} (little-endian hex words) as text."""
    import ipaddress

    raw = bytes.fromhex(hex_addr)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def _is_loopback(text: str, unset_ok: bool = False) -> bool:
    import ipaddress

    addr = ipaddress.ip_address(text)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback or (unset_ok and addr.is_unspecified)


def foreign_connections(pids: list[int]) -> list[str]:
    """Internet sockets (TCP and UDP, IPv4 and IPv6) of ``pids`` whose local or remote address is not the
    loopback (a listening socket's unset remote 0.0.0.0 / :: is fine; a local 0.0.0.0, listening on every
    interface, is not), read from /proc/PID/net/{tcp,tcp6,udp,udp6} (Linux):
    ``"PID proto local -> remote"`` each; an empty list means everything stays on 127.0.0.1.
    """
    found = []
    for pid in pids:
        inodes = _socket_inodes(pid)
        if not inodes:
            continue
        for proto in ("tcp", "tcp6", "udp", "udp6"):
            try:
                lines = Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                cols = line.split()
                if cols[9] not in inodes:
                    continue
                (local, lport), (remote, rport) = (c.split(":") for c in cols[1:3])
                local_ip, remote_ip = _ip(local), _ip(remote)
                if not (_is_loopback(local_ip) and _is_loopback(remote_ip, unset_ok=True)):
                    found.append(f"{pid} {proto} {local_ip}:{int(lport, 16)} -> {remote_ip}:{int(rport, 16)}")
    return found
