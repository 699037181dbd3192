#!/usr/bin/env bash
# Runs before `npm test` (package.json's pretest): the tools the suite runs besides Node.js and npm —
# Go with hashicorp/yamux's source (a Go yamux client against our RPC port), openssl (test
# certificates), curl (streaming save and restore) and chromium (the status pages' browser tests, driven
# by playwright-core, which never downloads a browser itself) — installed from Debian's packages when missing,
# with one `apt-get update`. Not root: it names what to install and fails, since the tests that need
# them fail rather than skip.
set -euo pipefail

missing=()
command -v go >/dev/null || missing+=(golang-go)
[ -f /usr/share/gocode/src/github.com/hashicorp/yamux/session.go ] || missing+=(golang-github-hashicorp-yamux-dev)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "the test suite needs ${missing[*]}: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing ${missing[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
