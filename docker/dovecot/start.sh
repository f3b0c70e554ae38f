#!/bin/sh
# Entry point of the compose file's `dovecot` service: one user, its password read from the file
# $DOVECOT_PASSWORD_FILE names (a secret at /run/secrets/…, as official images' *_FILE variables),
# then Dovecot in the foreground (PID 1 gets docker stop's SIGTERM). The password never reaches
# argv or the container's environment.
set -eu
user="${DOVECOT_USER:-user}"
: "${DOVECOT_PASSWORD_FILE:?set DOVECOT_PASSWORD_FILE to the file holding the destination account's password}"
DOVECOT_PASSWORD=$(cat "$DOVECOT_PASSWORD_FILE")
mkdir -p /srv/dovecot/run /srv/dovecot/state /srv/dovecot/mail
chown vmail:vmail /srv/dovecot/mail
umask 077
printf '%s:{PLAIN}%s::::::\n' "$user" "$DOVECOT_PASSWORD" > /srv/dovecot/users
chown dovecot /srv/dovecot/users
exec dovecot -F -c /etc/quirkmail-dovecot/dovecot.conf
