#!/usr/bin/env bash
# Install the real peers the tests and the scenario library use (Debian packages): Dovecot
# (IMAP/POP3/LMTP, the real destination and reference server) and the real clients isync (mbsync),
# offlineimap3 (IMAP), fetchmail, getmail6 (POP3) and swaks (SMTP; its --tls needs the two Perl TLS modules),
# Chromium (headless: the HTML report is checked in a real browser), and docker.io + debootstrap
# (the Docker world: no registry is reachable, so its base image is debootstrapped; the tests start
# dockerd themselves, scenarios/docker_world/engine.py; docker-compose checks docker/compose.yaml).
# Needs root (or sudo). Safe to run again: apt-get skips what is installed.
set -euo pipefail
packages=(dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd isync offlineimap3 fetchmail getmail6 swaks libnet-ssleay-perl libio-socket-ssl-perl chromium docker.io debootstrap docker-compose neomutt tmux)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-peers: all peers present (${packages[*]})"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-peers: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-peers: installing ${missing[*]}"
$sudo apt-get update -qq
# policy-rc.d may refuse to start the system Dovecot; that is fine, the tests run their own instances.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
