#!/usr/bin/env bash
# Installs what the test suites need when it is missing, from Debian's
# packages: the real clients the end-to-end tests drive (swaks, openssl,
# python3 is already on the machine). Later suites add slapd, MariaDB and
# PostgreSQL here. Safe to run again: it installs only what is absent.
set -euo pipefail

need=()
command -v swaks >/dev/null || need+=(swaks)
command -v openssl >/dev/null || need+=(openssl)
command -v python3 >/dev/null || need+=(python3)
# OpenLDAP server and clients for the LDAP tests (internal/testenv/slapd.go);
# slapd lives in /usr/sbin, not on every PATH.
command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || need+=(slapd)
command -v ldapadd >/dev/null || need+=(ldap-utils)
# MariaDB and PostgreSQL servers for the SQL tests (internal/testenv/mariadb.go,
# postgres.go); mariadbd is in /usr/sbin, postgres under /usr/lib/postgresql/N/bin.
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v postgres >/dev/null || need+=(postgresql)
# bsd-mailx for the `mail -s subject user@domain` test (e2e/sendmail_test.go).
command -v bsd-mailx >/dev/null || need+=(bsd-mailx)
# GNU SASL's gsasl, a SCRAM client that is not postcote's, for the SCRAM
# logins over IMAP and SMTP (internal/imapd, internal/smtpd scram_test.go).
command -v gsasl >/dev/null || need+=(gsasl)
# A real Postfix and Dovecot for the interop tests (auth service, LMTP both
# ways, Maildir shared with Dovecot, ENVELOPE/BODYSTRUCTURE against Dovecot)
# and the benchmark's comparison. The tests run private instances in temp
# folders; the system instances are never started.
[ -x /usr/sbin/postfix ] || need+=(postfix)
[ -x /usr/sbin/dovecot ] || need+=(dovecot-core)
[ -x /usr/lib/dovecot/imap ] || need+=(dovecot-imapd)
[ -x /usr/lib/dovecot/lmtp ] || need+=(dovecot-lmtpd)
# Dovecot's LDAP and SQL drivers, for bench/loginbench's comparison.
[ -f /usr/lib/dovecot/modules/auth/libauthdb_ldap.so ] || need+=(dovecot-ldap)
[ -f /usr/lib/dovecot/modules/auth/libdriver_mysql.so ] || need+=(dovecot-mysql)
[ -f /usr/lib/dovecot/modules/auth/libdriver_pgsql.so ] || need+=(dovecot-pgsql)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-test-deps: missing ${need[*]}; run as root or install them with apt-get" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing on a fresh machine; refresh them once.
apt-get update -qq || true
for i in 1 2 3 4 5 6; do
  if apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
    exit 0
  fi
  echo "install-test-deps: apt-get busy or failed, retrying in 5 s" >&2
  sleep 5
done
echo "install-test-deps: could not install ${need[*]}" >&2
exit 1
