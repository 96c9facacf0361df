#!/usr/bin/env bash
# Renders a `dcsearch report` HTML file to PNG with headless Chromium (Debian's `chromium`, installed
# with apt-get when missing). The report is self-contained, so Chromium needs no network: background
# networking, component updates and sync are off, and it runs in a throw-away profile.
#
#   scripts/render_report.sh report.html report.png [WIDTHxHEIGHT]   (default 1280x2400)
set -euo pipefail
if [[ $# -lt 2 || $# -gt 3 ]]; then
    echo "usage: $0 report.html out.png [WIDTHxHEIGHT]" >&2
    exit 2
fi
html="$(realpath "$1")"
out="$(realpath -m "$2")"
size="${3:-1280x2400}"
[[ -f "$html" ]] || { echo "$0: $1: no such file" >&2; exit 2; }
[[ "$size" =~ ^[0-9]+x[0-9]+$ ]] || { echo "$0: size must be WIDTHxHEIGHT, got '$size'" >&2; exit 2; }
browser="$(command -v chromium || command -v chromium-browser || true)"
if [[ -z "$browser" ]]; then
    echo "$0: installing chromium (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >&2
    browser="$(command -v chromium)"
fi
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --force-device-scale-factor=1 \
    --user-data-dir="$profile" --screenshot="$out" --window-size="${size/x/,}" "file://$html" \
    >/dev/null 2>"$profile/chromium.log" || { cat "$profile/chromium.log" >&2; exit 1; }
[[ -s "$out" ]] || { echo "$0: chromium wrote no screenshot" >&2; cat "$profile/chromium.log" >&2; exit 1; }
echo "$out"
