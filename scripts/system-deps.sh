#!/usr/bin/env bash
# Install the Debian packages a task needs, only if they are missing.
#   scripts/system-deps.sh test   → postgresql (throwaway test database), chromium (browser tests),
#                                   nginx-light (the fleet tests' load balancer)
#   scripts/system-deps.sh bench  → nginx, wrk, h2load (nghttp2-client), valgrind and postgresql
#                                   (benchmark harness)
set -euo pipefail

need=()
have_pg() { ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; }
case "${1:-test}" in
  test)
    have_pg || need+=(postgresql)
    command -v chromium >/dev/null 2>&1 || need+=(chromium)
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
    ;;
  bench)
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
    command -v wrk >/dev/null 2>&1 || need+=(wrk)
    command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
    command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
    have_pg || need+=(postgresql)
    ;;
  *) echo "usage: $0 test|bench" >&2; exit 2 ;;
esac

if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
