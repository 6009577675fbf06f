"""A real Milvus standalone server (PyPI `milvus` 2.3.5) for the tests, reachable from this machine only.

Milvus binds its ports (gRPC 19530, /healthz 9091, its embedded etcd 2379, the coordinators' ports) on every
interface. So the server runs in a private network namespace that holds nothing but loopback, and the test
process talks to it through a small TCP relay. One helper process — this file run as a script — does it all:

1. it binds its host-side listening sockets on 127.0.0.1 (free ports, or the ones asked for), in the host
   network namespace;
2. it moves itself into a new, empty network namespace (`unshare(CLONE_NEWNET)`; a user namespace too when
   not root) and brings `lo` up there — sockets made before the move stay in the host namespace;
3. it starts `milvus-server` in that namespace: its ports exist only there, so nothing outside the machine
   can reach it and parallel test sessions (other engineers, CI jobs) never collide on 19530;
4. it waits for `/healthz` inside the namespace, prints `READY <grpc port> <health port>` and relays TCP
   from the host sockets to 127.0.0.1:19530 / :9091 inside;
5. SIGINT/SIGTERM: SIGINT to milvus-server (its graceful stop), then exit; the namespace goes with its last
   process. SIGUSR1: SIGKILL the whole server (a crash, for fault tests), then exit.

Why not `ip netns exec` around pytest: the client would have to run in the namespace too, so every developer
and CI would need a wrapper around `pytest`; this way a plain `pytest` works, needs nothing but root (or
unprivileged user namespaces) and leaves no named namespace behind. The relay costs ~0.1 ms per call, which
matters to no test (benchmarks/scale.py runs its client inside the namespace instead: `enter_private_netns`).

The 246 MB of server binaries are unpacked once into a cache (~/.cache/assetrag-milvus/<version>) and
shared by every data dir, so a start takes ~8-10 s rather than ~20 s.

    from milvus_server import MilvusServer, unavailable_reason
    server = MilvusServer(data_dir).start()   # server.uri == "http://127.0.0.1:<port>"
    ...
    server.stop()
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

MILVUS_VERSION = "2.3.5"
GRPC_PORT = 19530  # inside the namespace
HEALTH_PORT = 9091
#: the interpreter that can `import milvus` (default: this one); set it when the server lives in another venv
PYTHON_ENV = "ASSETRAG_MILVUS_PYTHON"
CACHE_ENV = "ASSETRAG_MILVUS_CACHE"
#: every component's advertised address: loopback, never the machine's first unicast address
_IP_CONFIG = [
    f"{component}.ip=127.0.0.1"
    for component in ("proxy", "rootCoord", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")
]

_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


# -- the parent side (pytest, benchmarks) -------------------------------------------------------------


def milvus_python() -> str:
    return os.environ.get(PYTHON_ENV) or sys.executable


def unavailable_reason() -> str | None:
    """Why no server can be started here (None when it can): only a missing `milvus` package."""
    py = milvus_python()
    probe = subprocess.run(
        [py, "-c", "import milvus, sys; sys.stdout.write(milvus.__version__)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        return (
            f"the Milvus standalone server is not installed for {py} "
            f"(pip install milvus=={MILVUS_VERSION}, or set {PYTHON_ENV} to a Python that has it)"
        )
    return None


class MilvusServerError(RuntimeError):
    pass


class MilvusServer:
    """One milvus-server in its own loopback-only network namespace, reachable at `uri`."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        port: int = 0,
        extra_config: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.health_port = 0
        self.extra_config = extra_config
        self.proc: subprocess.Popen[str] | None = None
        self._log = self.data_dir / "helper.log"

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 240.0) -> MilvusServer:
        if self.proc is not None:
            raise MilvusServerError("already started")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, __file__, "serve", "--data", str(self.data_dir), "--port", str(self.port)]
        for item in self.extra_config:
            cmd += ["--extra-config", item]
        log = open(self._log, "a")  # noqa: SIM115 - the helper keeps writing to it
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
        log.close()
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("READY"):
                    _, grpc, health = line.split()
                    self.port, self.health_port = int(grpc), int(health)
                    break
                if not line:  # the helper exited
                    break
            elif self.proc.poll() is not None:
                break
        else:
            self._abort()
            raise MilvusServerError(f"Milvus did not become healthy in {timeout:.0f} s\n{self.logs()}")
        if not line.startswith("READY"):
            self._abort()
            raise MilvusServerError(f"the Milvus server helper failed to start\n{self.logs()}")
        # /healthz again, from this side of the relay: the path the tests will use works
        with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=10) as resp:
            if b"OK" not in resp.read():
                raise MilvusServerError("healthz through the relay is not OK")
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Graceful stop (SIGINT to milvus-server), as an operator would."""
        self._signal(signal.SIGINT, timeout)

    def crash(self, timeout: float = 30.0) -> None:
        """SIGKILL the server processes (milvus-server and the milvus binary): a crash, for fault tests."""
        self._signal(signal.SIGUSR1, timeout)

    def _signal(self, sig: int, timeout: float) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def _abort(self) -> None:
        self._signal(signal.SIGUSR1, 20)

    def logs(self, chars: int = 4000) -> str:
        """The tail of the helper's and the server's logs (for failure messages)."""
        parts = []
        logs = self.data_dir / "logs"
        for path in (self._log, logs / "milvus-stdout.log", logs / "milvus-stderr.log"):
            if path.exists():
                text = path.read_text(errors="replace")
                parts.append(f"--- {path} ---\n{text[-chars:]}")
        return "\n".join(parts)

    def __enter__(self) -> MilvusServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- namespace plumbing (used by the helper and by benchmarks/scale.py) ----------------------------------


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def enter_private_netns(user_ns: bool | None = None) -> None:
    """Move this process (it must still be single-threaded) into a new network namespace with only `lo`, up.

    As root a plain CLONE_NEWNET; otherwise — or when root lacks CAP_SYS_ADMIN, as in a default Docker
    container — inside a new user namespace that maps us to root there (needs unprivileged user namespaces).
    """
    libc = _libc()
    uid, gid = os.geteuid(), os.getegid()
    tries = [user_ns] if user_ns is not None else ([False, True] if uid == 0 else [True])
    errors = []
    for with_user in tries:
        if libc.unshare(_CLONE_NEWNET | (_CLONE_NEWUSER if with_user else 0)) == 0:
            break
        errors.append(os.strerror(ctypes.get_errno()))
    else:
        raise MilvusServerError(
            f"cannot create a private network namespace for Milvus ({'; '.join(errors)}): run the tests as root "
            "with CAP_SYS_ADMIN (a container: --cap-add SYS_ADMIN), or allow unprivileged user namespaces "
            "(sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0)"
        )
    if with_user:
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
        Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
    _loopback_up()


def _loopback_up() -> None:
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, siocgifflags, ifreq))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH14s", b"lo", flags | iff_up, b""))


def binaries_cache() -> Path:
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "assetrag-milvus"
    )
    return Path(root) / MILVUS_VERSION


def prepare_data_dir(data_dir: Path) -> None:
    """Point `data_dir/bin` at the shared, unpacked server binaries (unpacking them once, under a lock)."""
    cache = binaries_cache()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be unpacking right now
        subprocess.run(
            [milvus_python(), "-c", "import sys, milvus; milvus._initialize_data_files(sys.argv[1])", str(cache)],
            check=True,
        )
    bin_dir = data_dir / "bin"
    if not bin_dir.exists():
        bin_dir.symlink_to(cache / "bin", target_is_directory=True)


def server_command(data_dir: Path, extra_config: list[str]) -> list[str]:
    cmd = [
        milvus_python(),
        "-c",
        "import sys, milvus; sys.argv[0] = 'milvus-server'; milvus.main()",
        "--data",
        str(data_dir),
        "--proxy-port",
        str(GRPC_PORT),
    ]
    for item in [*_IP_CONFIG, *extra_config]:
        cmd += ["--extra-config", item]
    return cmd


def wait_healthy(proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{HEALTH_PORT}/healthz"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise MilvusServerError(f"milvus-server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if b"OK" in resp.read():
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise MilvusServerError(f"milvus-server not healthy after {timeout:.0f} s")


# -- the helper process -------------------------------------------------------------------------------


def _pump(src: socket.socket, dst: socket.socket) -> None:
    buf = bytearray(256 * 1024)
    view = memoryview(buf)
    try:
        while True:
            n = src.recv_into(buf)
            if not n:
                break
            dst.sendall(view[:n])
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            src.shutdown(socket.SHUT_RD)


def _relay(listener: socket.socket, inner_port: int) -> None:
    """Accept on a host-namespace socket; connect inside our namespace; copy bytes both ways."""
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", inner_port), timeout=10)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()


def _listen(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    return s


def _serve(data_dir: Path, port: int, extra_config: list[str]) -> int:
    _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)  # never outlive the test session
    _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1)  # the milvus binary, orphaned by a crash, is ours to reap
    grpc_listener, health_listener = _listen(port), _listen(0)  # host namespace
    enter_private_netns()
    prepare_data_dir(data_dir)
    server = subprocess.Popen(
        server_command(data_dir, extra_config),
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr,
        stderr=sys.stderr,
        start_new_session=True,  # one process group: milvus-server and the milvus binary it runs
    )
    stopping = threading.Event()
    crash = threading.Event()

    def on_signal(sig: int, _frame: object) -> None:
        if sig == signal.SIGUSR1:
            crash.set()
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, on_signal)
    try:
        wait_healthy(server, 240)
    except MilvusServerError as exc:
        print(f"helper: {exc}", file=sys.stderr)
        _kill_group(server)
        return 1
    for listener, inner in ((grpc_listener, GRPC_PORT), (health_listener, HEALTH_PORT)):
        threading.Thread(target=_relay, args=(listener, inner), daemon=True).start()
    print(f"READY {grpc_listener.getsockname()[1]} {health_listener.getsockname()[1]}", flush=True)
    while not stopping.is_set() and server.poll() is None:
        stopping.wait(0.5)
    if server.poll() is not None and not stopping.is_set():
        print(f"helper: milvus-server exited on its own with code {server.returncode}", file=sys.stderr)
        return 1
    if crash.is_set():
        _kill_group(server)
    else:
        os.killpg(server.pid, signal.SIGINT)  # milvus-server stops the binary: SIGTERM, then SIGKILL after 1 s
        try:
            server.wait(45)
        except subprocess.TimeoutExpired:
            _kill_group(server)
    with contextlib.suppress(ProcessLookupError):  # anything left in the group (the binary itself)
        os.killpg(server.pid, signal.SIGKILL)
    _reap(10.0)
    return 0


def _reap(timeout: float) -> None:
    """Wait for every child (and adopted orphan) to be gone, so that none is left as a zombie."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


def main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve", help="run a server in a private namespace, relay it to 127.0.0.1:PORT")
    serve.add_argument("--data", required=True, type=Path)
    serve.add_argument("--port", type=int, default=0, help="host port for gRPC (0: a free one)")
    serve.add_argument("--extra-config", action="append", default=[])
    args = ap.parse_args(argv)
    return _serve(args.data.resolve(), args.port, args.extra_config)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
