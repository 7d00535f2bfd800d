#!/usr/bin/env bash
# Writes, as a tar stream on stdout, the root file system of the engine
# tests' image: the static busybox with every applet linked, /www/index.html
# (its content is the first argument), and each further argument, a host
# binary, copied in with the shared libraries ldd names for it (socat for
# the UDP echo, iperf3 for the bench). Import it with
#   tests/engines/make-image.sh MARKER /usr/bin/socat | podman import - localhost/bb
# No registry, no network. Needs busybox-static (/bin/busybox).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 INDEX_CONTENT [BINARY...]" >&2; exit 2; }
marker=$1
shift
R=$(mktemp -d "${TMPDIR:-/tmp}/lanyard-image.XXXXXX")
trap 'rm -rf "$R"' EXIT
chmod 755 "$R"
mkdir -p "$R/bin" "$R/etc" "$R/tmp" "$R/www" "$R/root" "$R/proc" "$R/sys" "$R/dev"
chmod 1777 "$R/tmp"
bb=$(command -v busybox)
# A dynamic busybox would need its libraries; the tests need the static one.
if ldd "$bb" >/dev/null 2>&1; then
    echo "$bb is not static (apt-get install busybox-static)" >&2
    exit 1
fi
cp "$bb" "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do
    [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"
done
ln -s bin "$R/sbin"
mkdir -p "$R/usr"
ln -s ../bin "$R/usr/bin"
ln -s ../bin "$R/usr/sbin"
echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
echo 'root:x:0:' >"$R/etc/group"
printf '%s\n' "$marker" >"$R/www/index.html"
for b in "$@"; do
    cp -L "$b" "$R/bin/"
    # Every library ldd resolves, at the same path, and the loader.
    for lib in $(ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
        mkdir -p "$R$(dirname "$lib")"
        cp -L "$lib" "$R$lib"
    done
done
tar --numeric-owner --owner=0 --group=0 -C "$R" -c .
