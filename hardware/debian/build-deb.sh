#!/usr/bin/env bash
# Builds the Debian packages from a release build, natively for this machine's
# architecture (amd64 or arm64): hardware/debian/build-deb.sh VERSION BIN_DIR OUT_DIR
#
#   telestation_VERSION_ARCH.deb         the stripped binary, units, rules, profiles
#   telestation-dbgsym_VERSION_ARCH.deb  its debug symbols, as dh_strip lays them out:
#                                        /usr/lib/debug/.build-id/XX/YYYY.debug
#                                        (the Debian archive calls this a .ddeb)
#
# Stations download updates over the same slow link as the images, so the
# package carries one stripped binary (telestation-hub is a symlink to it) and
# the 70 MB of DWARF go in -dbgsym, installed only where someone debugs.
set -euo pipefail
VERSION=$1 BIN_DIR=$2 OUT=$(realpath -m "$3")
ARCH=$(dpkg --print-architecture)
STAGE="$OUT/telestation_${VERSION}_${ARCH}"
DBG="$OUT/telestation-dbgsym_${VERSION}_${ARCH}"
rm -rf "$STAGE" "$DBG"
mkdir -p "$STAGE/DEBIAN" "$DBG/DEBIAN"

make --no-print-directory install-files BIN_DIR="$BIN_DIR" DESTDIR="$STAGE" PREFIX=/usr INSTALL_CONFIG=no >/dev/null
bin="$STAGE/usr/bin/telestation"
[ -L "$STAGE/usr/bin/telestation-hub" ] || { echo "build-deb: usr/bin/telestation-hub should be a symlink to telestation" >&2; exit 1; }

# Debug symbols out, then strip, then the link back (what dh_strip does).
# The file is named by the build ID, which gdb, eu-unstrip and debuginfod
# look up; the debuglink is the fallback for tools that read only that.
build_id=$(readelf -n "$bin" | sed -n 's/^ *Build ID: *\([0-9a-f]*\)$/\1/p')
[ -n "$build_id" ] || { echo "build-deb: $BIN_DIR/telestation has no build ID (link with --build-id)" >&2; exit 1; }
debug_rel="usr/lib/debug/.build-id/${build_id:0:2}/${build_id:2}.debug"
mkdir -p "$(dirname "$DBG/$debug_rel")"
objcopy --only-keep-debug --compress-debug-sections "$bin" "$DBG/$debug_rel"
chmod 0644 "$DBG/$debug_rel"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$bin"
objcopy --add-gnu-debuglink="$DBG/$debug_rel" "$bin"

doc="$STAGE/usr/share/doc/telestation"
install -m 0644 hardware/debian/copyright "$doc/copyright"
sed "s/@VERSION@/$VERSION/" hardware/debian/changelog | gzip -9n > "$doc/changelog.gz"
gzip -9n "$doc/README.md"
chmod 0644 "$doc/changelog.gz"
# As debhelper does for -dbgsym: its doc directory is a symlink to the main package's.
mkdir -p "$DBG/usr/share/doc"
ln -s telestation "$DBG/usr/share/doc/telestation-dbgsym"

# Shared-library dependencies, as dpkg-shlibdeps finds them for the binary.
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debian"
printf 'Source: telestation\n\nPackage: telestation\nArchitecture: any\n' > "$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O "$bin" | sed -n 's/^shlibs:Depends=//p')

size=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
    hardware/debian/control.in > "$STAGE/DEBIAN/control"
install -m 0755 hardware/debian/postinst hardware/debian/prerm hardware/debian/postrm "$STAGE/DEBIAN/"

# The -dbgsym control file as debhelper writes it (lintian knows these fields).
dbg_size=$(du -sk --exclude=DEBIAN "$DBG" | cut -f1)
cat > "$DBG/DEBIAN/control" <<EOF
Package: telestation-dbgsym
Source: telestation
Version: $VERSION
Auto-Built-Package: debug-symbols
Architecture: $ARCH
Maintainer: Telestation maintainers <maintainers@telestation.invalid>
Installed-Size: $dbg_size
Depends: telestation (= $VERSION)
Section: debug
Priority: optional
Description: debug symbols for telestation
Build-Ids: $build_id
EOF

for d in "$STAGE" "$DBG"; do
  (cd "$d" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$d/DEBIAN/md5sums"
  chmod 0644 "$d/DEBIAN/md5sums" "$d/DEBIAN/control"
done

# xz at dpkg-deb's default level (6). -9 (a 64 MiB window) saves under 2 %
# here and makes every station decompress with ~65 MiB of RAM; see bench/package.
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$OUT/telestation_${VERSION}_${ARCH}.deb" >/dev/null
dpkg-deb --root-owner-group -Zxz --build "$DBG" "$OUT/telestation-dbgsym_${VERSION}_${ARCH}.deb" >/dev/null
echo "$OUT/telestation_${VERSION}_${ARCH}.deb"
echo "$OUT/telestation-dbgsym_${VERSION}_${ARCH}.deb"
