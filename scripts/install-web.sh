#!/usr/bin/env bash
# Installs what the online experiment's tests use: Debian's Chromium (driven by Playwright
# through its executable, so no browser download), and Node.js/npm (export-web installs jsPsych
# from the npm registry). Needs root and apt; elsewhere it says so and the browser tests skip
# with a reason.
set -u
pkgs="chromium nodejs npm"
missing=0
[ -x /usr/lib/chromium/chromium ] || command -v chromium >/dev/null 2>&1 || missing=1
command -v npm >/dev/null 2>&1 || missing=1
[ "$missing" = 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  need=""
  [ -x /usr/lib/chromium/chromium ] || command -v chromium >/dev/null 2>&1 || need="chromium"
  command -v npm >/dev/null 2>&1 || need="$need nodejs npm"
  apt-get update -qq && apt-get install -y -qq $need >/dev/null \
    || echo "install-web: apt-get install $need failed; browser tests will skip"
else
  echo "install-web: not root or no apt-get; install $pkgs yourself to run the browser tests"
fi
exit 0
