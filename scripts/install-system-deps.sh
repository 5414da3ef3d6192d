#!/usr/bin/env bash
# Installs the Debian packages that the test suite and benchmarks use, when they are missing:
# goaccess (the speed peer), logrotate (rotation tests), chromium + chromium-driver (browser tests).
set -euo pipefail
needed=()
command -v goaccess >/dev/null 2>&1 || needed+=(goaccess)
command -v logrotate >/dev/null 2>&1 || [ -x /usr/sbin/logrotate ] || needed+=(logrotate)
# Debian's Chromium and its driver: the real browser for the dashboard and report tests.
command -v chromium >/dev/null 2>&1 || needed+=(chromium)
command -v chromedriver >/dev/null 2>&1 || needed+=(chromium-driver)
[ ${#needed[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages: ${needed[*]} (install them with your package manager)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing system packages: ${needed[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
