#!/usr/bin/env bash
# Install the system programs the test bed (scripts/testbed) starts: Docker engines,
# registries, a static busybox for the test image, Redis, PostgreSQL, nginx (which the
# discovery tests point at rendered upstream blocks), skopeo (the sync benchmark's baseline),
# and Prometheus with Alertmanager (monitoring).
#   --browser   also Chromium and its WebDriver, for the browser tests.
# Idempotent and quiet when everything is present. As root on Debian it installs what is
# missing with apt-get; otherwise it lists what is missing and exits 1.
set -euo pipefail

browser=0
for arg in "$@"; do
  case "$arg" in
    --browser) browser=1 ;;
    -h|--help) sed -n '2,6s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "install-system-deps: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

# Non-root shells often lack the sbin directories, where dockerd lives.
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

packages=(docker.io docker-registry busybox-static redis-server postgresql nginx ca-certificates skopeo
          prometheus prometheus-alertmanager)
missing=()

need_command() {  # need_command COMMAND DESCRIPTION
  command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}

# The test image is built FROM scratch around /bin/busybox, so it must not need a dynamic loader.
busybox_is_static() {
  [ -x /bin/busybox ] || return 1
  local out
  out=$(LC_ALL=C ldd /bin/busybox 2>&1) || true  # ldd exits 1 on static binaries
  grep -Eq 'not a dynamic executable|statically linked' <<<"$out"
}

postgres_present() {
  local bindir
  for bindir in /usr/lib/postgresql/*/bin; do
    [ -x "$bindir/postgres" ] && [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_isready" ] && return 0
  done
  return 1
}

need_command dockerd "dockerd (docker.io)"
need_command containerd "containerd (docker.io)"
need_command runc "runc (docker.io)"
need_command docker-registry "docker-registry"
need_command redis-server "redis-server"
need_command nginx "nginx"
need_command skopeo "skopeo"
need_command prometheus "prometheus"
need_command prometheus-alertmanager "prometheus-alertmanager"
busybox_is_static || missing+=("static /bin/busybox (busybox-static)")
postgres_present || missing+=("PostgreSQL server binaries in /usr/lib/postgresql/*/bin (postgresql)")
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=("ca-certificates")

if [ "$browser" = 1 ]; then
  packages+=(chromium chromium-driver)
  need_command chromium "chromium"
  need_command chromedriver "chromedriver (chromium-driver)"
fi

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || [ ! -r /etc/debian_version ] || ! command -v apt-get >/dev/null; then
  echo "install-system-deps: missing:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  echo "install-system-deps: run this script as root on Debian, or install: ${packages[*]}" >&2
  exit 1
fi

echo "install-system-deps: installing ${packages[*]} (missing: ${missing[*]})"
# The test bed starts private instances of Redis, PostgreSQL, nginx, Prometheus and
# Alertmanager; their system services
# must not start (and listen) on install. A policy-rc.d that denies just those, unless the
# machine has its own policy. Docker's own service starts as usual.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\ncase "$1" in redis-server*|postgresql*|nginx*|prometheus*) exit 101 ;; esac\nexit 0\n' > "$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
