#!/usr/bin/env bash
# Installs the Debian packages that the test suite and benchmarks use, when they are missing:
# goaccess (the speed peer), logrotate (rotation tests), chromium + chromium-driver (browser
# tests), openssl (the SMTP tests' certificate), util-linux's setpriv (the permission test
# reads as an unprivileged user when run as root), prometheus-alertmanager (the Alertmanager
# channel's test pushes alerts into the real one). In CI (CI=true) a test whose dependency is
# missing fails rather than skips (tests/needs.py), so everything a test needs is listed here.
set -euo pipefail
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
needed=()
command -v goaccess >/dev/null 2>&1 || needed+=(goaccess)
command -v logrotate >/dev/null 2>&1 || needed+=(logrotate)
command -v openssl >/dev/null 2>&1 || needed+=(openssl)
command -v setpriv >/dev/null 2>&1 || needed+=(util-linux)
# Debian's Chromium and its driver: the real browser for the dashboard and report tests.
command -v chromium >/dev/null 2>&1 || needed+=(chromium)
command -v chromedriver >/dev/null 2>&1 || needed+=(chromium-driver)
# Debian's Alertmanager (0.25): the real receiver of `type = "alertmanager"` channels.
command -v prometheus-alertmanager >/dev/null 2>&1 || needed+=(prometheus-alertmanager)
if [ ${#needed[@]} -gt 0 ]; then
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
fi
# The permission test, run as root, reads as this unprivileged user (Debian has it; a slim
# image may not).
if [ "$(id -u)" -eq 0 ] && ! getent passwd nobody >/dev/null 2>&1; then
  getent group nogroup >/dev/null 2>&1 || groupadd --system nogroup
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    --gid nogroup nobody
fi
