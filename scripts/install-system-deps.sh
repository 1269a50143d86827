#!/usr/bin/env bash
# Installs the Debian packages the build needs (idempotent). Safe to run repeatedly.
#   cmake          -> opus (opusic-sys builds libopus 1.6)
#   nasm           -> openh264 fast assembly paths (without it the encoder is ~3.5x slower)
#   libclang-dev   -> nokhwa (bindgen)
#   libasound2-dev -> cpal (ALSA)
#   pkg-config     -> finding the above
#   libsodium23, python3 -> the independent libsodium check of docs/protocol.md (tests only)
#   tmux           -> terminal tests of the accept prompt (tests only)
#   libx11-6, libxcursor1 -> the `--video-out window` sink (minifb loads them with dlopen only
#                    when a window is opened; nothing is needed to build or to run headless)
#   xvfb, x11-apps, xdotool -> the window sink's test: a virtual X server, `xwd` for its
#                    screenshot, `xdotool` to press Escape in it (tests only)
#   coturn         -> `turnserver` for the relay-only calls through a real coturn started
#                    from deploy/coturn/turnserver.conf (tests only; the package's own
#                    service is not started where policy-rc.d forbids it, and the tests never
#                    use it)
#   iproute2       -> `ip netns` for the calls across network namespaces (tests only)
#   redis-server   -> the Redis that several call-signaling instances share (--redis); the
#                    tests start their own on loopback with persistence off (tests only; the
#                    package's own service is not used)
#   chromium       -> the web page's calls against `call` in a real browser, headless, driven
#                    by playwright-core from web/package-lock.json (tests only; no browser
#                    is downloaded)
# Node >= 20 and npm (the web client's unit tests and bundle build) are expected on the machine
# and not installed here: Debian 12 ships Node 18. Without them scripts/test.sh says in one line
# that it skipped the web tests; the server embeds the committed web/dist and needs no Node.
set -euo pipefail
pkgs=(cmake nasm libclang-dev libasound2-dev pkg-config libsodium23 python3 tmux
  libx11-6 libxcursor1 xvfb x11-apps xdotool coturn iproute2 redis-server chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing system packages: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
