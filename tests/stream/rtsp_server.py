"""Test helpers: a real RTSP server (GStreamer's gst-rtsp-server) on 127.0.0.1, and a silent one.

The GStreamer Python bindings come from Debian (``scripts/install-rtsp-test-deps.sh``), so the
server runs under the SYSTEM ``/usr/bin/python3`` in a subprocess, never in the test's own
interpreter (which may be a virtualenv or pyenv without ``gi``). Used by tests/stream/test_rtsp.py,
tests/stream/test_bad_inputs.py and benchmarks/soak.py.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
INSTALL_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install-rtsp-test-deps.sh"

# Runs under /usr/bin/python3: serve one mount until SIGTERM. Prints READY once listening.
_SERVER = r'''
import argparse, signal, sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer
ap = argparse.ArgumentParser()
ap.add_argument("--port", required=True)
ap.add_argument("--mount", required=True)
ap.add_argument("--launch", required=True)
ap.add_argument("--user")
ap.add_argument("--password")
ap.add_argument("--shared", action="store_true")
a = ap.parse_args()
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(a.port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(a.launch)
factory.set_shared(a.shared)
if a.user:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "viewer")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(a.user, a.password), token)
    server.set_auth(auth)
    perms = GstRtspServer.RTSPPermissions()
    perms.add_permission_for_role("viewer", "media.factory.access", True)
    perms.add_permission_for_role("viewer", "media.factory.construct", True)
    factory.set_permissions(perms)
server.get_mount_points().add_factory(a.mount, factory)
if server.attach(None) == 0:
    print("cannot listen on port", a.port, file=sys.stderr, flush=True)
    sys.exit(1)
loop = GLib.MainLoop()
GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
print("READY", flush=True)
loop.run()
'''


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gst_rtsp_available() -> bool:
    """True when the system Python can import gst-rtsp-server with the elements we use."""
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    check = ("import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0');"
             "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
             "assert all(Gst.ElementFactory.find(n) for n in ('qtdemux','h264parse','rtph264pay','x264enc'))")
    try:
        return subprocess.run([SYSTEM_PYTHON, "-c", check], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_gst_rtsp(install: bool = True) -> str | None:
    """None when the RTSP server can run; else why not. With ``install``, runs
    scripts/install-rtsp-test-deps.sh first (as root on CI; it is quick when already done)."""
    if gst_rtsp_available():
        return None
    if install:
        proc = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900)
        if gst_rtsp_available():
            return None
        return f"{INSTALL_SCRIPT.name} failed (rc {proc.returncode}): {proc.stderr.strip()[-300:]}"
    return "GStreamer RTSP server not installed; run scripts/install-rtsp-test-deps.sh"


def file_launch(path: str | Path) -> str:
    """Launch string that serves an H.264 MP4 file once, in real time."""
    return (f"( filesrc location={Path(path).resolve()} ! qtdemux ! h264parse ! "
            "rtph264pay name=pay0 pt=96 config-interval=1 )")


def pattern_launch(width: int = 160, height: int = 96, fps: int = 25, pattern: str = "ball") -> str:
    """Launch string for an endless live test pattern, H.264 encoded on the fly (low latency)."""
    return (f"( videotestsrc is-live=true pattern={pattern} ! video/x-raw,width={width},height={height},"
            f"framerate={fps}/1 ! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast "
            f"key-int-max={fps} threads=1 ! video/x-h264,profile=baseline ! "
            "rtph264pay name=pay0 pt=96 config-interval=1 )")


class RtspServer:
    """gst-rtsp-server in a subprocess, serving ``launch`` at ``rtsp://127.0.0.1:<port><mount>``.

    >>> with RtspServer(file_launch("clip.mp4")) as srv:
    ...     srv.url                 # rtsp://127.0.0.1:41234/cam
    """

    def __init__(self, launch: str, mount: str = "/cam", port: int | None = None, user: str | None = None,
                 password: str | None = None, shared: bool = False) -> None:
        self.launch, self.mount, self.port = launch, mount, port or free_port()
        self.user, self.password, self.shared = user, password, shared
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.mount}"

    def url_with(self, user: str, password: str, path: str | None = None) -> str:
        return f"rtsp://{user}:{password}@127.0.0.1:{self.port}{path or self.mount}"

    def start(self, timeout_s: float = 20.0) -> "RtspServer":
        """Start and wait until it listens (retries a port taken meanwhile by someone else)."""
        cmd = [SYSTEM_PYTHON, "-c", _SERVER, "--port", str(self.port), "--mount", self.mount,
               "--launch", self.launch]
        if self.user:
            cmd += ["--user", self.user, "--password", self.password or ""]
        if self.shared:
            cmd.append("--shared")
        # A clean environment for the system Python: no venv / pyenv PYTHONPATH leaking in.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        if not ready or "READY" not in ready[0]:
            err = self._stop_proc()
            raise RuntimeError(f"RTSP server did not start on port {self.port}: {err[-500:]}")
        return self

    def _stop_proc(self, sig: int = signal.SIGTERM) -> str:
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        self.proc = None
        return err or ""

    def stop(self) -> None:
        """Stop gracefully (SIGTERM)."""
        self._stop_proc(signal.SIGTERM)

    def kill(self) -> None:
        """Kill abruptly (SIGKILL), like a camera losing power: clients see the TCP connection die."""
        self._stop_proc(signal.SIGKILL)

    def restart(self, launch: str | None = None, down_s: float = 0.0) -> None:
        """Kill, stay down ``down_s`` seconds, start again on the same port (optionally serving
        something else, e.g. another frame size)."""
        self.kill()
        time.sleep(down_s)
        if launch:
            self.launch = launch
        deadline = time.monotonic() + 10
        while True:  # the old socket may linger for a moment
            try:
                self.start()
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def __enter__(self) -> "RtspServer":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.kill()


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte: a hung camera."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)  # held open, never answered

    def close(self) -> None:
        for c in self.accepted:
            c.close()
        self.sock.close()

    def __enter__(self) -> "SilentServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
