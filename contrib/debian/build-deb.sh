#!/bin/sh
# Builds dist/pykeepalived_<version>_<arch>.deb from the working tree with dpkg-deb alone
# (no debhelper). Usage: contrib/debian/build-deb.sh [PYTHON [OUTDIR]]; `make deb` runs it
# with the project's venv. See contrib/debian/README.md.
#
# The package carries wheels, not a venv: its postinst builds /opt/pykeepalived from them
# offline. The wheels of the dependencies are kept in $WHEELHOUSE (default .venv/wheelhouse):
# the first build fills it with `pip wheel` (the index, or pip's cache), every later build
# resolves from it with --no-index, that is offline.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
PYTHON=${1:-$top/.venv/bin/python}
OUTDIR=${2:-$top/dist}
WHEELHOUSE=${WHEELHOUSE:-$top/.venv/wheelhouse}

cd "$top"
started=$(date +%s)
version=$("$PYTHON" -c 'from watchdog.version import VERSION; print(VERSION)')
compat=$("$PYTHON" -c 'from watchdog.version import KEEPALIVED_COMPAT; print(KEEPALIVED_COMPAT)')
arch=$(dpkg --print-architecture)
pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
pynext=$("$PYTHON" -c 'import sys; print("%d.%d" % (sys.version_info[0], sys.version_info[1] + 1))')
maintainer=${DEB_MAINTAINER:-"$(git config user.name) <$(git config user.email)>"}
# Reproducible timestamps: the last commit's, not the clock's.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

work=$(mktemp -d "${TMPDIR:-/tmp}/pykeepalived-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
src=$work/src
wheels=$root/usr/lib/pykeepalived/wheels
doc=$root/usr/share/doc/pykeepalived

# ------------------------------------------------------------------ wheels
# A copy of the tree, so that setuptools leaves no build/ or egg-info behind in the checkout.
mkdir -p "$src" "$wheels" "$WHEELHOUSE"
tar -C "$top" --exclude=./.git --exclude=./.venv --exclude=./dist --exclude=./build \
    --exclude='*.egg-info' --exclude=__pycache__ --exclude=.mypy_cache --exclude=.ruff_cache \
    --exclude=.pytest_cache --exclude=.hypothesis -cf - . | tar -C "$src" -xf -
# The versions the venv runs (and the tests ran with), not whatever is newest.
"$PYTHON" -m pip freeze -q --disable-pip-version-check --exclude-editable |
    grep -Eiv '^(pykeepalived[ =@]|-e )' >"$work/constraints.txt" || true
# --no-build-isolation: setuptools and wheel come from the venv (its test extras), not the index.
pipwheel() {
    "$PYTHON" -m pip wheel -q --disable-pip-version-check --no-build-isolation \
        -c "$work/constraints.txt" --find-links "$WHEELHOUSE" -w "$wheels" "$@" "$src"
}
if ! pipwheel --no-index 2>"$work/pip.err"; then
    echo "build-deb: not every dependency is in $WHEELHOUSE yet; fetching them once" >&2
    rm -f "$wheels"/*.whl
    pipwheel
fi
for w in "$wheels"/*.whl; do
    case $(basename "$w") in pykeepalived-*) ;; *) cp -n "$w" "$WHEELHOUSE/" ;; esac
done
test -f "$wheels/pykeepalived-$version-py3-none-any.whl" || { echo "build-deb: no wheel of pykeepalived $version" >&2; exit 1; }

# ------------------------------------------------------------------ files
install -d "$root/usr/sbin" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/default" "$doc"
ln -s /opt/pykeepalived/bin/pykeepalived "$root/usr/sbin/pykeepalived"
ln -s /opt/pykeepalived/bin/pykeepalivedctl "$root/usr/sbin/pykeepalivedctl"
ln -s /opt/pykeepalived/bin/pygenhash "$root/usr/bin/pygenhash"

# The unit of contrib/systemd with the packaged program in ExecStart= (nothing else changes).
unit=$root/lib/systemd/system/pykeepalived.service
sed -E 's#^ExecStart=[^ ]*/pykeepalived( |$)#ExecStart=/usr/sbin/pykeepalived\1#' \
    contrib/systemd/pykeepalived.service >"$unit"
grep -q '^ExecStart=/usr/sbin/pykeepalived' "$unit" || {
    echo "build-deb: cannot find the ExecStart= of contrib/systemd/pykeepalived.service" >&2
    exit 1
}
# /etc/default/pykeepalived must set the variable the unit's ExecStart= passes on.
for var in $(sed -n 's/^ExecStart=.*\$\([A-Za-z_][A-Za-z0-9_]*\).*/\1/p' "$unit"); do
    grep -q "^$var=" "$here/default" || {
        echo "build-deb: contrib/debian/default does not set $var, which the unit's ExecStart= uses" >&2
        exit 1
    }
done
install -m 0644 "$here/default" "$root/etc/default/pykeepalived"
# The man pages `make man` renders from the parsers and keyword tables (haparent/manpages.py).
"$PYTHON" -m haparent.manpages "$work/man" >/dev/null
for page in "$work"/man/*.[1-8]; do
    install -d "$root/usr/share/man/man${page##*.}"
    gzip -9n <"$page" >"$root/usr/share/man/man${page##*.}/$(basename "$page").gz"
done
install -m 0644 "$here/keepalived.conf.example" "$doc/keepalived.conf.example"
install -m 0644 "$here/README.md" "$doc/README.Debian"
install -d "$root/usr/share/lintian/overrides"
install -m 0644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/pykeepalived"
install -m 0644 "$here/copyright" "$doc/copyright"
{
    printf 'pykeepalived (%s) unstable; urgency=medium\n\n' "$version"
    printf '  * Built from %s.\n\n' "$(git describe --always --dirty 2>/dev/null || echo 'a source tree')"
    printf ' -- %s  %s\n' "$maintainer" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.gz"

# ------------------------------------------------------------------ control area
install -d "$root/DEBIAN"
for s in postinst prerm postrm; do install -m 0755 "$here/$s" "$root/DEBIAN/$s"; done
echo /etc/default/pykeepalived >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: pykeepalived
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: python3 (>= $pyver), python3 (<< $pynext), python3-venv, python3-nftables, iproute2
Section: net
Priority: optional
Homepage: https://keepalived.org
Description: keepalived-compatible VRRP and LVS health checks in Python
 pykeepalived runs the keepalived.conf of keepalived $compat unchanged:
 the same configuration language, command-line options and VRRP packets,
 with a parent that notices hung children and restarts that lose no VIP.
 .
 The package carries the wheels of pykeepalived and its Python dependencies;
 its postinst installs them offline into a virtualenv in /opt/pykeepalived.
EOF
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0r md5sum) >"$root/DEBIAN/md5sums"
find "$root" -type d -exec chmod 0755 {} +
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$OUTDIR"
deb=$OUTDIR/pykeepalived_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb: $(du -k "$deb" | cut -f1) KiB, $(ls "$wheels" | wc -l) wheels, built in $(($(date +%s) - started)) s"
