#!/usr/bin/env bash
# Builds the Debian package from a release build, natively for this machine's
# architecture (amd64 or arm64): hardware/debian/build-deb.sh VERSION BIN_DIR OUT_DIR
set -euo pipefail
VERSION=$1 BIN_DIR=$2 OUT=$(realpath -m "$3")
ARCH=$(dpkg --print-architecture)
STAGE="$OUT/telestation_${VERSION}_${ARCH}"
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN"

make --no-print-directory install-files BIN_DIR="$BIN_DIR" DESTDIR="$STAGE" PREFIX=/usr INSTALL_CONFIG=no >/dev/null
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$STAGE/usr/bin/telestation" "$STAGE/usr/bin/telestation-hub"

doc="$STAGE/usr/share/doc/telestation"
install -m 0644 hardware/debian/copyright "$doc/copyright"
sed "s/@VERSION@/$VERSION/" hardware/debian/changelog | gzip -9n > "$doc/changelog.gz"
gzip -9n "$doc/README.md"
chmod 0644 "$doc/changelog.gz"

# Shared-library dependencies, as dpkg-shlibdeps finds them for the binaries.
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debian"
printf 'Source: telestation\n\nPackage: telestation\nArchitecture: any\n' > "$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O "$STAGE/usr/bin/telestation" "$STAGE/usr/bin/telestation-hub" | sed -n 's/^shlibs:Depends=//p')

size=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
    hardware/debian/control.in > "$STAGE/DEBIAN/control"
install -m 0755 hardware/debian/postinst hardware/debian/prerm hardware/debian/postrm "$STAGE/DEBIAN/"
(cd "$STAGE" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$STAGE/DEBIAN/md5sums"
chmod 0644 "$STAGE/DEBIAN/md5sums" "$STAGE/DEBIAN/control"

dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$OUT/telestation_${VERSION}_${ARCH}.deb" >/dev/null
echo "$OUT/telestation_${VERSION}_${ARCH}.deb"
