#!/usr/bin/env bash
# Checks the README's two commands on a fresh machine: builds a minimal Debian 12 root with debootstrap
# (--variant=minbase: no compiler, no git, no certificates, no Python), copies a clean clone of HEAD
# into it and runs `scripts/demo.sh`, then, in a second fresh root, `scripts/test.sh`, each under
# chroot with /proc, /sys and /dev mounted. Prints the time and the outcome of each and, on failure,
# the first error line and the log's tail. Exit status 0 only when both commands succeed.
#
#   sudo scripts/check_fresh_setup.sh [demo] [test]     (default: both, in that order)
#
# Environment:
#   FRESH_DIR=DIR         where the roots and logs go (default /var/tmp/dcs-fresh); roots are removed
#                         at the end unless FRESH_KEEP=1 (logs stay in DIR/logs)
#   FRESH_MIRROR=URL      the Debian mirror (default: the first one serving bookworm in this machine's
#                         apt sources; no host is written here)
#   FRESH_CACHE_DAYS=N    reuse the untouched debootstrap result (DIR/base.tar) for N days (default 7;
#                         0 bootstraps anew every time)
#
# The roots' mounts live in a private mount namespace (unshare), so they vanish with it on any exit,
# kill -9 included; the EXIT trap unmounts what is left besides and removes the roots. Not part of
# .ci/run: it downloads and builds everything from scratch (30-50 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

commands=("$@")
[[ ${#commands[@]} -gt 0 ]] || commands=(demo test)
for c in "${commands[@]}"; do
  [[ "$c" == demo || "$c" == test ]] || { echo "check_fresh_setup.sh: unknown command '$c' (expected demo or test)" >&2; exit 2; }
done
if [[ $(id -u) -ne 0 ]]; then
  echo "check_fresh_setup.sh: needs root (debootstrap, chroot, mount): run it with sudo" >&2
  exit 2
fi

FRESH_DIR="${FRESH_DIR:-/var/tmp/dcs-fresh}"
CACHE_DAYS="${FRESH_CACHE_DAYS:-7}"
mkdir -p "$FRESH_DIR/logs"
base_tar="$FRESH_DIR/base.tar"
roots=()
child=""

cleanup() {
  local r
  # The command's namespace: killing unshare kills everything in it (--kill-child).
  if [[ -n "$child" ]]; then kill -KILL "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  for r in "${roots[@]}"; do
    # Nothing should be mounted here (the mounts were made in a private namespace); unmount anyway.
    grep -F " $r/" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    if [[ "${FRESH_KEEP:-0}" != 1 ]]; then rm -rf --one-file-system "$r"; fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The Debian mirror and the security mirror, from this machine's apt sources (deb822 .sources files and
# one-line .list files): the first URI whose suites include bookworm, and bookworm-security.
apt_uri_for_suite() {
  local suite="$1"
  {
    for f in /etc/apt/sources.list.d/*.sources; do
      [[ -f "$f" ]] || continue
      awk -v want="$suite" 'BEGIN { RS = ""; FS = "\n" }
        { uris = ""; suites = ""; enabled = 1
          for (i = 1; i <= NF; ++i) {
            if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
            if ($i ~ /^Suites:/) { suites = " " $i " "; sub(/^ Suites:/, " ", suites) }
            if ($i ~ /^Enabled:[ \t]*no/) enabled = 0
          }
          if (enabled && uris != "" && index(suites, " " want " ")) { split(uris, u, /[ \t]+/); print u[1] }
        }' "$f"
    done
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      sed -E 's/\[[^]]*\]//' | awk -v want="$suite" '$1 == "deb" && $3 == want { print $2 }' || true
  } | awk 'NR == 1'   # not head: it would end the writers early, a failure under pipefail
}
mirror="${FRESH_MIRROR:-$(apt_uri_for_suite bookworm)}"
security="$(apt_uri_for_suite bookworm-security)"
if [[ -z "$mirror" ]]; then
  echo "check_fresh_setup.sh: no Debian bookworm mirror in /etc/apt/sources.list{,.d}: set FRESH_MIRROR" >&2
  exit 2
fi

if ! command -v debootstrap > /dev/null; then
  echo "# installing debootstrap" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap > /dev/null
fi

# A clean clone of HEAD: what a user gets. Uncommitted changes are not part of the check.
if [[ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]]; then
  echo "# note: uncommitted changes in $repo are not checked (a clean clone of HEAD is)" >&2
fi
head_commit="$(git -C "$repo" rev-parse --short HEAD)"

# The base root: debootstrap once, kept as a tar of the untouched result for CACHE_DAYS days.
if [[ ! -f "$base_tar" ]] || [[ "$CACHE_DAYS" == 0 ]] ||
   [[ -n "$(find "$base_tar" -mtime "+$CACHE_DAYS" 2>/dev/null)" ]]; then
  boot="$FRESH_DIR/bootstrap"
  roots+=("$boot")
  rm -rf --one-file-system "$boot"
  echo "# debootstrap --variant=minbase bookworm from $mirror" >&2
  t0=$SECONDS
  if ! debootstrap --variant=minbase bookworm "$boot" "$mirror" > "$FRESH_DIR/logs/debootstrap.log" 2>&1; then
    echo "check_fresh_setup.sh: debootstrap failed; the log's tail ($FRESH_DIR/logs/debootstrap.log):" >&2
    tail -n 20 "$FRESH_DIR/logs/debootstrap.log" >&2
    exit 1
  fi
  tar -C "$boot" -cf "$base_tar.tmp" . && mv "$base_tar.tmp" "$base_tar"
  rm -rf --one-file-system "$boot"
  echo "# debootstrap: $((SECONDS - t0)) s" >&2
fi

# Lays a fresh root from the base, as a new Debian 12 install has it (the release, updates and
# security suites; resolv.conf and hosts), with a clean clone of HEAD in /root/dcsearch.
make_root() {
  local root="$1"
  rm -rf --one-file-system "$root"
  mkdir -p "$root"
  tar -C "$root" -xf "$base_tar"
  {
    echo "deb $mirror bookworm main"
    echo "deb $mirror bookworm-updates main"
    [[ -z "$security" ]] || echo "deb $security bookworm-security main"
  } > "$root/etc/apt/sources.list"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  cp -L /etc/hosts "$root/etc/hosts"
  git clone -q --no-hardlinks "$repo" "$root/root/dcsearch"
}

# Runs one README command in its own fresh root; prints its time and outcome.
status=0
summary=()
for c in "${commands[@]}"; do
  root="$FRESH_DIR/root-$c"
  log="$FRESH_DIR/logs/$c.log"
  roots+=("$root")
  make_root "$root"
  echo "# $c: scripts/$c.sh in a fresh Debian 12 root ($root, HEAD $head_commit); log: $log" >&2
  t0=$SECONDS
  rc=0
  # A private mount and PID namespace: the mounts and any process left behind go with it (--kill-child:
  # also when this script is interrupted).
  unshare --mount --pid --fork --kill-child --propagation private -- /bin/bash -c '
    set -e
    root="$1"; cmd="$2"
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys" || mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    exec chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      /bin/bash -c "cd /root/dcsearch && scripts/$cmd.sh" < /dev/null
  ' check "$root" "$c" > "$log" 2>&1 &
  # Waited for in the background so that INT or TERM end the check at once (the trap runs during
  # `wait`, not only after a foreground command ends).
  child=$!
  wait "$child" || rc=$?
  child=""
  secs=$((SECONDS - t0))
  if [[ $rc -eq 0 ]]; then
    summary+=("$c: passed in ${secs} s")
  else
    status=1
    first="$(grep -nE '(^E: |[Ee]rror|ERROR|FAILED|Failed|[Nn]ot found|No such file|Could NOT|Aborted|Segmentation)' "$log" | grep -vE 'Passed|-Werror|Error-free' | head -n1 || true)"
    summary+=("$c: FAILED (exit $rc) after ${secs} s; first error: ${first:-none matched, see the log}")
    echo "# $c: the log's last 30 lines" >&2
    tail -n 30 "$log" >&2
  fi
  echo "# ${summary[-1]}" >&2
done

echo "fresh Debian 12 root (minbase, mirror $mirror), HEAD $head_commit:"
printf '  %s\n' "${summary[@]}"
exit $status
