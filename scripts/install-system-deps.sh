#!/usr/bin/env bash
# System packages the project needs beyond PyPI: the CJK font for CCPD-style (Chinese) plates.
# Installs only what is missing; needs root (or sudo) when something is missing.
set -euo pipefail
if fc-list 2>/dev/null | grep -qi "wqy"; then exit 0; fi
if [ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then exit 0; fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq fonts-wqy-microhei >/dev/null
