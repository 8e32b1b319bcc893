#!/bin/sh
# Make sure a program the test suite needs exists (a Mosquitto broker, a Chromium browser).
#
#   ensure_tool.sh BINARY PACKAGE WHAT NEEDED_BY [BREW] [DNF]
#
#   found                                  -> print its path on stdout, exit 0
#   missing, Debian/Ubuntu, root or sudo -n -> apt-get update + install Debian's PACKAGE, print the path
#   missing otherwise                       -> ONE line on stderr with the exact command to run, exit 1
#
# Nothing here waits on the network before deciding to fail, so the failing path takes well under 10 s.
#
# Environment:
#   LINEBRIDGE_<BINARY>_SEARCH   colon-separated directories to look for BINARY in (upper case, e.g.
#                                LINEBRIDGE_MOSQUITTO_SEARCH; default: $PATH plus /usr/sbin, /usr/local/sbin,
#                                /opt/homebrew/sbin)
#   LINEBRIDGE_OS_RELEASE        os-release file that says which distribution this is (default /etc/os-release)
set -u

binary="$1" apt_packages="$2" what="$3" needed_by="$4" brew="${5:-$2}" dnf="${6:-$2}"
search_var="LINEBRIDGE_$(echo "$binary" | tr '[:lower:]-' '[:upper:]_')_SEARCH"
eval "search=\"\${$search_var-\${PATH}:/usr/sbin:/usr/local/sbin:/opt/homebrew/sbin}\""
os_release="${LINEBRIDGE_OS_RELEASE-/etc/os-release}"

find_binary() {
    old_ifs=$IFS
    IFS=:
    for dir in $search; do
        if [ -n "$dir" ] && [ -x "$dir/$binary" ] && [ ! -d "$dir/$binary" ]; then
            IFS=$old_ifs
            echo "$dir/$binary"
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
    echo "make test needs $what; install it with: $1" >&2
    exit 1
}

if found="$(find_binary)"; then
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
    echo "== installing Debian's $apt_packages system-wide (apt-get), needed by $needed_by" >&2
    export DEBIAN_FRONTEND=noninteractive
    $run apt-get update -qq >&2 || fail "$as_root"
    $run apt-get install -y -qq --no-install-recommends $apt_packages >/dev/null || fail "$as_root"
    search="${search}:/usr/bin:/usr/sbin"
    find_binary || fail "$as_root"
    exit 0
fi

case "$(uname -s)" in
    Darwin) fail "brew install $brew" ;;
esac
if [ -r "$os_release" ] && grep -Eq '^(ID|ID_LIKE)="?.*(fedora|rhel).*"?$' "$os_release"; then
    fail "sudo dnf install -y $dnf"
fi
fail "your system's package manager (the package is called $apt_packages), then run make test again"
