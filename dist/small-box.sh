#!/usr/bin/env bash
# Builds mp1d for small boxes (profile "small": size-optimised, LTO, one
# codegen unit, stripped, panic=abort) and smoke-tests each binary on
# loopback, under qemu-user for the ARM targets.
#
#   dist/small-box.sh                        # aarch64 musl, armv7, x86_64 musl
#   dist/small-box.sh aarch64-unknown-linux-musl
#
# Ends with the README's size table rows ("Running on a small box"): the
# figures there are pasted from this output, not typed.
#
# Installs what it needs when it can (rustup targets; Debian's
# qemu-user-static and gcc-arm-linux-gnueabihf). A target whose standard
# library cannot be installed is skipped with a message; any other failure
# fails the script.
set -uo pipefail
cd "$(dirname "$0")/.."
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf x86_64-unknown-linux-musl)

apt_install() {
    [ "$(id -u)" = 0 ] || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 && return 0
    apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

status=0
rows=()
for t in "${TARGETS[@]}"; do
    echo "== $t"
    if ! rustup target list --installed 2>/dev/null | grep -qx "$t"; then
        if ! rustup target add "$t" >/dev/null 2>&1; then
            echo "SKIPPED $t: its standard library cannot be installed here (rustup target add $t failed)"
            continue
        fi
    fi
    runner=""
    case $t in
    aarch64-*) runner=qemu-aarch64-static ;;
    armv7-*) runner=qemu-arm-static
        command -v arm-linux-gnueabihf-gcc >/dev/null || apt_install gcc-arm-linux-gnueabihf \
            || { echo "FAIL $t: gcc-arm-linux-gnueabihf is missing and could not be installed"; status=1; continue; } ;;
    esac
    if [ -n "$runner" ] && ! command -v "$runner" >/dev/null; then
        apt_install qemu-user-static || { echo "FAIL $t: $runner is missing and could not be installed"; status=1; continue; }
    fi
    if ! cargo build --locked --profile small --target "$t" --bin mp1d; then
        echo "FAIL $t: build failed"; status=1; continue
    fi
    bin="target/$t/small/mp1d"
    size=$(stat -c %s "$bin")
    mib=$(awk -v s="$size" 'BEGIN{printf "%.2f", s/1048576}')
    echo "$t: $bin $size bytes ($mib MiB); $(file -b "$bin" | cut -d, -f1-2,4-5)"
    case $(file -b "$bin") in
    *static-pie*) linking=static-pie ;;
    *statically*) linking=static ;;
    *) linking=dynamic ;;
    esac
    case $t in *-gnu*) linking="$linking (glibc)" ;; esac
    rows+=("| $t | $(printf "%'d" "$size" 2>/dev/null || echo "$size") bytes ($mib MiB) | $linking |")
    if python3 dist/smoke.py ${runner:+--runner "$runner"} "$bin"; then
        echo "PASS $t"
    else
        echo "FAIL $t: smoke test"; status=1
    fi
done
if [ ${#rows[@]} -gt 0 ]; then
    echo
    echo "README rows ($(date -u +%F), $(git rev-parse --short HEAD 2>/dev/null || echo unknown)):"
    echo "| target | binary | linking |"
    echo "|---|---:|---|"
    printf '%s\n' "${rows[@]}"
fi
exit $status
