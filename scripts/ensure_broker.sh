#!/bin/sh
# Make sure a Mosquitto binary exists for the test suite (the uplink tests start real brokers).
#
#   found                                  -> print its path on stdout, exit 0
#   missing, Debian/Ubuntu, root or sudo -n -> apt-get update + install Debian's mosquitto, print the path
#   missing otherwise                       -> ONE line on stderr with the exact command to run, exit 1
#
# Nothing here waits on the network before deciding to fail, so the failing path takes well under 10 s.
#
# Environment:
#   LINEBRIDGE_MOSQUITTO_SEARCH  colon-separated directories to look for `mosquitto` in
#                                (default: $PATH plus /usr/sbin, /usr/local/sbin, /opt/homebrew/sbin)
#   LINEBRIDGE_OS_RELEASE        os-release file that says which distribution this is (default /etc/os-release)
set -u

search="${LINEBRIDGE_MOSQUITTO_SEARCH-${PATH}:/usr/sbin:/usr/local/sbin:/opt/homebrew/sbin}"
os_release="${LINEBRIDGE_OS_RELEASE-/etc/os-release}"
apt_packages="mosquitto"

find_mosquitto() {
    old_ifs=$IFS
    IFS=:
    for dir in $search; do
        if [ -n "$dir" ] && [ -x "$dir/mosquitto" ] && [ ! -d "$dir/mosquitto" ]; then
            IFS=$old_ifs
            echo "$dir/mosquitto"
            return 0
        fi
    done
    IFS=$old_ifs
    return 1
}

is_debian() {
    [ -r "$os_release" ] || return 1
    # ID=debian / ID=ubuntu, or ID_LIKE naming debian (Ubuntu, Mint, Raspberry Pi OS ...)
    grep -Eq '^(ID|ID_LIKE)="?([a-z]+ )*(debian|ubuntu)( [a-z]+)*"?$' "$os_release" && command -v apt-get >/dev/null 2>&1
}

fail() {
    echo "make test needs the Mosquitto MQTT broker (its uplink tests run a real one); install it with: $1" >&2
    exit 1
}

if found="$(find_mosquitto)"; then
    echo "$found"
    exit 0
fi

install="apt-get update && apt-get install -y --no-install-recommends $apt_packages"
if command -v sudo >/dev/null 2>&1; then as_root="sudo sh -c '$install'"; else as_root="su -c '$install'"; fi
if is_debian; then
    if [ "$(id -u)" -eq 0 ]; then
        run=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
        run="sudo -n"
    else
        fail "$as_root"
    fi
    echo "== installing Debian's mosquitto system-wide (apt-get), needed by the uplink tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    $run apt-get update -qq >&2 || fail "$as_root"
    $run apt-get install -y -qq --no-install-recommends $apt_packages >/dev/null || fail "$as_root"
    search="${search}:/usr/sbin"
    find_mosquitto || fail "$as_root"
    exit 0
fi

case "$(uname -s)" in
    Darwin) fail "brew install mosquitto" ;;
esac
if [ -r "$os_release" ] && grep -Eq '^(ID|ID_LIKE)="?.*(fedora|rhel).*"?$' "$os_release"; then
    fail "sudo dnf install -y mosquitto"
fi
fail "your system's package manager (the package is called mosquitto; https://mosquitto.org/download/), then run make test again"
