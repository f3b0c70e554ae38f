#!/bin/sh
# Entry point of the compose file's `dovecot` service: one user from the environment, then
# Dovecot in the foreground (PID 1 gets docker stop's SIGTERM). The password never reaches argv.
set -eu
user="${DOVECOT_USER:-user}"
: "${DOVECOT_PASSWORD:?set DOVECOT_PASSWORD to the destination account's password}"
mkdir -p /srv/dovecot/run /srv/dovecot/state /srv/dovecot/mail
chown vmail:vmail /srv/dovecot/mail
umask 077
printf '%s:{PLAIN}%s::::::\n' "$user" "$DOVECOT_PASSWORD" > /srv/dovecot/users
chown dovecot /srv/dovecot/users
exec dovecot -F -c /etc/quirkmail-dovecot/dovecot.conf
