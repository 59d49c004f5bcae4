#!/usr/bin/env bash
# Installs the virtual display and keyboard tools the PsychoPy end-to-end tests use
# (Xvfb, xdotool, JACK for PsychoPy's keyboard backend). Needs root and apt; elsewhere it says
# so and the display tests skip with a reason.
set -u
pkgs="xvfb xdotool libjack-jackd2-0"
missing=0
command -v Xvfb >/dev/null 2>&1 || missing=1
command -v xdotool >/dev/null 2>&1 || missing=1
ldconfig -p 2>/dev/null | grep -q libjack || missing=1
[ "$missing" = 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq $pkgs >/dev/null \
    || echo "install-display: apt-get install $pkgs failed; display tests will skip"
else
  echo "install-display: not root or no apt-get; install $pkgs yourself to run the display tests"
fi
exit 0
