#!/usr/bin/env bash
# Installs the Debian packages the tests use as real peers (Prometheus, node_exporter,
# VictoriaMetrics, Alertmanager, PostgreSQL). Needs root (CI runs as root). Does nothing when all are present.
set -euo pipefail
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)
command -v victoria-metrics >/dev/null || need+=(victoria-metrics)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || [ -x /usr/sbin/runc ] || need+=(runc)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)  # static: copied into a container rootfs
[ -x /lib/systemd/systemd-journal-remote ] || need+=(systemd-journal-remote)
[ -x /usr/bin/chromium ] || need+=(chromium)  # browser tests (tests/ui): Playwright drives it
# real syslog/_bulk shipper (tests/integration/test_syslog_rsyslog.py); syslog-ng conflicts with it in Debian
command -v rsyslogd >/dev/null || need+=(rsyslog)
[ -e /usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so ] || compgen -G "/usr/lib/*/rsyslog/omelasticsearch.so" >/dev/null \
  || need+=(rsyslog-elasticsearch)
# auth state tests on PostgreSQL: the server at 127.0.0.1:5432 when there is one, else a private one (initdb)
command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
# a real QR decoder for the TOTP enrolment QR code (tests/support/qr.py)
command -v zbarimg >/dev/null || need+=(zbar-tools)
# syslog-ng, a second real HTTP shipper (tests/integration/test_syslog_ng.py): Debian's syslog-ng-core
# conflicts with rsyslog (both provide system-log-daemon), so its two packages are unpacked with
# dpkg -x into $SYSLOG_NG_ROOT and run from there (LD_LIBRARY_PATH, --module-path); the libraries it
# links against are ordinary packages.
SYSLOG_NG_ROOT="${SYSLOG_NG_ROOT:-/opt/clearsight-peers/syslog-ng}"
for lib in libivykis0 libnet1 libpcre3 libcurl4; do dpkg -s "$lib" >/dev/null 2>&1 || need+=("$lib"); done
sng_missing=0
{ [ -x "$SYSLOG_NG_ROOT/usr/sbin/syslog-ng" ] && compgen -G "$SYSLOG_NG_ROOT/usr/lib/syslog-ng/*/libhttp.so"; } \
  >/dev/null || sng_missing=1
if [ ${#need[@]} -eq 0 ] && [ "$sng_missing" = 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  [ "$sng_missing" = 1 ] && need+=("syslog-ng (unpacked into $SYSLOG_NG_ROOT)")
  echo "install-peers: missing ${need[*]} and not root; install them with apt-get" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
if [ ${#need[@]} -gt 0 ]; then apt-get install -y -q --no-install-recommends "${need[@]}"; fi
if [ "$sng_missing" = 1 ]; then
  dl="$(mktemp -d)"
  (cd "$dl" && apt-get download -q syslog-ng-core syslog-ng-mod-http)
  mkdir -p "$SYSLOG_NG_ROOT"
  for deb in "$dl"/*.deb; do dpkg -x "$deb" "$SYSLOG_NG_ROOT"; done
  rm -rf "$dl"
fi
# Debian's packages enable systemd units; nothing starts them in a container, and tests start
# their own instances on free ports.
