#!/usr/bin/env bash
# Builds the .deb and checks what an installation would do: the binaries,
# the unit and the options file are in it, and its maintainer scripts
# enable and start mp1d on install and stop it on removal. Installs
# cargo-deb (crates.io) when missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --quiet
deb=$(cargo deb -p mp1 2>/dev/null | tail -n 1)
[ -f "$deb" ] || { echo "deb-check: cargo deb built nothing" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -e "$deb" "$work/control"
dpkg-deb -c "$deb" >"$work/contents"
fail=0
need() { # FILE PATTERN WHAT
    if ! grep -q -- "$2" "$1"; then echo "deb-check: $3" >&2; fail=1; fi
}
for f in ./usr/bin/mp1d ./usr/bin/mp1 ./etc/default/mp1d mp1d.service; do
    need "$work/contents" "$f" "the package lacks $f"
done
need "$work/control/conffiles" /etc/default/mp1d "/etc/default/mp1d is not a conffile"
need "$work/control/postinst" "deb-systemd-helper enable 'mp1d.service'\|deb-systemd-helper enable mp1d.service" "postinst does not enable mp1d"
need "$work/control/postinst" "_dh_action=start" "postinst does not start mp1d"
need "$work/control/postinst" 'deb-systemd-invoke $_dh_action mp1d.service' "postinst does not start mp1d"
[ -f "$work/control/prerm" ] && need "$work/control/prerm" "deb-systemd-invoke stop" "prerm does not stop mp1d" \
    || { echo "deb-check: no prerm" >&2; fail=1; }
[ "$fail" = 0 ] && echo "deb-check: $(basename "$deb") enables and starts mp1d on install, stops it on removal"
exit "$fail"
