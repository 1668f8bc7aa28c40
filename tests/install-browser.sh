#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests when it is missing (Playwright's own browser
# download does not work on our machines). Needs root (or passwordless sudo) and apt.
set -euo pipefail
[ -x /usr/bin/chromium ] && [ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "install-browser: /usr/bin/chromium is missing and apt-get is not available; browser tests will fail" >&2
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
echo "install-browser: installing chromium from Debian"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null
