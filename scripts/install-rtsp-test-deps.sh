#!/usr/bin/env bash
# System packages for the RTSP tests (tests/stream/test_rtsp.py) and benchmarks/soak.py:
# GStreamer's RTSP server, driven by the system /usr/bin/python3 through PyGObject.
# Idempotent: when the server already imports, it exits at once. Needs root (or sudo) otherwise.
set -euo pipefail
check() {
  /usr/bin/python3 - <<'PY' 2>/dev/null
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer  # noqa: F401
Gst.init(None)
for name in ("qtdemux", "h264parse", "rtph264pay", "filesrc", "videotestsrc", "x264enc"):
    assert Gst.ElementFactory.find(name), name
PY
}
if [ -x /usr/bin/python3 ] && check; then exit 0; fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  python3 python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav >/dev/null
check || { echo "install-rtsp-test-deps: GStreamer RTSP server still not importable" >&2; exit 1; }
