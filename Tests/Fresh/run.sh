#!/usr/bin/env bash
# make test-fresh: the README's "Two commands" on a fresh Debian 12, as a new
# user would run them. Builds a clean bookworm root with debootstrap
# (--variant=minbase, plus sudo and one sudoer user, as the Debian installer
# leaves a machine), installs the Swift toolchain's prerequisites from
# Tests/Fresh/swift-prerequisites — the list the README gives — binds in this
# machine's Swift toolchain at /opt/swift, clones the current commit and runs
# `make demo` in the clone. Passes when make demo exits 0 and the demo verified
# every image's sha256 on the hub.
#
#   Tests/Fresh/run.sh            as root (make test-fresh uses sudo otherwise)
#
# The debootstrapped root is cached in FRESH_DIR (default .build-fresh/base),
# and the downloaded .debs in FRESH_DIR/apt-archives, so a second run skips
# the downloads; each run starts from a copy of the cached root and a fresh
# clone, so nothing of an earlier run leaks into the next.
#
# Stand-ins for what a user would fetch from the network, all from the host:
#   FRESH_SWIFT      the toolchain (default /opt/swift; README: tarball in /opt/swift)
#   FRESH_PACKAGES   the Swift package mirror the host's git config points
#                    https://github.com/ at (default /opt/swift-packages); the
#                    host's url.*.insteadOf entries are copied into the root
#   resolv.conf, the CA bundle, /etc/pip.conf and the host's Debian apt sources
# The repository is the git directory of this checkout, bound read-only.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
CACHE=${FRESH_DIR:-$SRC/.build-fresh}
SWIFT_DIR=${FRESH_SWIFT:-/opt/swift}
PACKAGES_DIR=${FRESH_PACKAGES:-/opt/swift-packages}
SUITE=bookworm
USER_NAME=station
PREREQS_FILE=$HERE/swift-prerequisites

say() { printf '== test-fresh: %s\n' "$*"; }
die() { printf 'test-fresh: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, mounts, chroot); run it through 'make test-fresh', which uses sudo"
command -v debootstrap >/dev/null || die "debootstrap is missing; 'make deps-test' installs it (apt-get install debootstrap)"
[ -x "$SWIFT_DIR/usr/bin/swift" ] || die "no Swift toolchain at $SWIFT_DIR/usr/bin/swift; set FRESH_SWIFT to the directory holding usr/bin/swift"

PREREQS=$(sed 's/#.*//' "$PREREQS_FILE" | xargs)
[ -n "$PREREQS" ] || die "$PREREQS_FILE lists no packages"

# The README must tell users to install exactly this list: the apt-get line
# in its "Two commands" section.
readme_line=$(awk '/^## /{s=($0=="## Two commands")} s && /apt-get install/' "$SRC/README.md" | head -n 1)
[ -n "$readme_line" ] || die "README.md's \"Two commands\" section has no apt-get install line of the toolchain's prerequisites"
readme_pkgs=$(printf '%s\n' "$readme_line" | sed 's/.*apt-get install//' | tr ' ' '\n' | grep -v -e '^-' -e '^$' -e '\\' | sort -u | xargs)
want_pkgs=$(printf '%s\n' $PREREQS | sort -u | xargs)
if [ "$readme_pkgs" != "$want_pkgs" ]; then
    die "README.md's prerequisites ($readme_pkgs) differ from $PREREQS_FILE ($want_pkgs); make them the same"
fi

COMMIT=$(git -C "$SRC" rev-parse HEAD)
GITDIR=$(git -C "$SRC" rev-parse --path-format=absolute --git-common-dir)
[ -z "$(git -C "$SRC" status --porcelain --untracked-files=no)" ] ||
    say "note: uncommitted changes are not tested; the clone is of commit $COMMIT"

# Debian's mirror, as the host's apt sources name it.
MIRROR=$(sed -n 's/^URIs: *\(http[^ ]*debian\/*\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

BASE=$CACHE/base
R=$CACHE/root
ARCHIVES=$CACHE/apt-archives
mkdir -p "$CACHE" "$ARCHIVES"

MOUNTS=()
cleanup() {
    local i
    for (( i=${#MOUNTS[@]}-1; i>=0; i-- )); do umount -R -l "${MOUNTS[$i]}" 2>/dev/null || true; done
    MOUNTS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mnt() { mount "$@"; MOUNTS+=("${!#}"); }

# Removes a root, refusing while anything is still mounted inside it (a
# bound /dev or toolchain must never be deleted through the root).
remove_root() {
    [ -e "$1" ] || return 0
    if findmnt -rn -o TARGET | grep -q "^$1\(/\|$\)"; then die "$1 still has mounts; unmount them first"; fi
    rm -rf --one-file-system "$1"
}

# Mounts proc, sys, dev and the apt cache in the root. /sys is a fresh
# read-only sysfs and /dev a tmpfs with its own device nodes, not the host's
# bound in: a stray `rm -rf` of the cache (or `git clean -x`) during a run
# then cannot reach the host's devices or cgroups.
enter() {
    mnt -t proc proc "$R/proc"
    mnt -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
    mnt -t tmpfs -o mode=0755,nosuid,size=1m fresh-dev "$R/dev"
    local n
    for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
        IFS=: read -r name major minor <<< "$n"
        mknod -m 0666 "$R/dev/$name" c "$major" "$minor"
    done
    ln -s /proc/self/fd "$R/dev/fd"
    ln -s /proc/self/fd/0 "$R/dev/stdin"; ln -s /proc/self/fd/1 "$R/dev/stdout"; ln -s /proc/self/fd/2 "$R/dev/stderr"
    mkdir "$R/dev/pts" "$R/dev/shm"
    mnt -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts"
    ln -s pts/ptmx "$R/dev/ptmx"
    mnt -t tmpfs -o mode=1777,nosuid,nodev fresh-shm "$R/dev/shm"
    mnt --bind "$ARCHIVES" "$R/var/cache/apt/archives"
}
in_root() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

t0=$(now)
# 1. The cached base: minbase bookworm, the host's Debian sources, sudo and
# one sudoer user with a home directory. Built in base.tmp and renamed when
# complete, so an interrupted debootstrap is never taken for a cache.
if [ ! -e "$BASE/.complete" ]; then
    say "debootstrap --variant=minbase $SUITE from $MIRROR into $BASE (cached for later runs)"
    remove_root "$BASE.tmp"
    debootstrap --variant=minbase --cache-dir="$ARCHIVES" "$SUITE" "$BASE.tmp" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1 ||
        die "debootstrap failed; see $CACHE/debootstrap.log"
    R=$BASE.tmp
    # The host's Debian apt sources (bookworm, -updates, -security), not its third-party ones.
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uris=$(grep -v '^[[:space:]]*#' "$f" | grep -o -E 'https?://[^ ]+' || true)
        [ -n "$uris" ] && ! printf '%s\n' $uris | grep -q -v 'debian\.org' || continue
        if [ "$f" = /etc/apt/sources.list ]; then cp "$f" "$R/etc/apt/sources.list.host"; else cp "$f" "$R/etc/apt/sources.list.d/"; fi
    done
    [ -e "$R/etc/apt/sources.list.host" ] && mv "$R/etc/apt/sources.list.host" "$R/etc/apt/sources.list"
    if ls "$R"/etc/apt/sources.list.d/* >/dev/null 2>&1 && [ ! -e /etc/apt/sources.list ]; then rm -f "$R/etc/apt/sources.list"; fi
    cp -L /etc/resolv.conf "$R/etc/resolv.conf"
    enter
    in_root apt-get update -qq
    in_root apt-get install -y -qq --no-install-recommends sudo > "$CACHE/base-apt.log" 2>&1 ||
        die "installing sudo in the base failed; see $CACHE/base-apt.log"
    in_root useradd --create-home --shell /bin/bash --groups sudo "$USER_NAME"
    # A password prompt cannot be answered here; the user is a sudoer all the same.
    echo "$USER_NAME ALL=(ALL) NOPASSWD:ALL" > "$R/etc/sudoers.d/$USER_NAME"
    chmod 0440 "$R/etc/sudoers.d/$USER_NAME"
    cleanup
    touch "$R/.complete"
    mv "$BASE.tmp" "$BASE"
    R=$CACHE/root
fi
t_base=$(now)

# 2. This run's root: a copy of the base.
say "fresh root $R from the cached base"
remove_root "$R"
cp -a "$BASE" "$R"
rm -f "$R/.complete"
cp -L /etc/resolv.conf "$R/etc/resolv.conf"
# The chroot shares the host's name; the Debian installer puts it in /etc/hosts.
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$(hostname)" > "$R/etc/hosts"
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$R/etc/pip.conf"
enter

# 3. The README's prerequisites, as the README says to install them (here
# without recommends, so the list is proven enough on its own).
say "apt-get install the toolchain's prerequisites: $PREREQS"
in_root apt-get update -qq
in_root apt-get install -y -qq --no-install-recommends $PREREQS > "$CACHE/prerequisites.log" 2>&1 ||
    die "installing the prerequisites failed; see $CACHE/prerequisites.log"
# The host's CA bundle, after ca-certificates wrote the root's own: the host's
# may hold the CA of a proxy in front of PyPI.
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/ca-certificates.crt"
t_prereqs=$(now)

# 4. The toolchain where the README puts it, on the user's PATH as the README says.
mkdir -p "$R/opt/swift"
mnt --bind -o ro "$SWIFT_DIR" "$R/opt/swift"
echo 'export PATH=/opt/swift/usr/bin:$PATH' >> "$R/home/$USER_NAME/.profile"
# The package mirror and the git config that sends github.com to it.
if [ -d "$PACKAGES_DIR" ]; then
    mkdir -p "$R$PACKAGES_DIR"
    mnt --bind -o ro "$PACKAGES_DIR" "$R$PACKAGES_DIR"
fi
{ git config --system --get-regexp '^url\..*\.insteadof$' || true; git config --global --get-regexp '^url\..*\.insteadof$' || true; } |
while read -r key value; do
    base=${key#url.}; base=${base%.insteadof}
    git config --file "$R/etc/gitconfig" --add "url.$base.insteadOf" "$value"
done
# The repository: this checkout's git directory, read-only.
mkdir -p "$R/src/telestation.git"
mnt --bind -o ro "$GITDIR" "$R/src/telestation.git"
# Git refuses repositories another user owns, and the bound ones are root's:
# each is named safe (git 2.39 has no wildcard short of "*"). On a user's
# machine these are github.com's, fetched over the network.
for d in /src/telestation.git "$PACKAGES_DIR"/*/*.git; do
    [ -d "$R$d" ] && git config --file "$R/etc/gitconfig" --add safe.directory "$d"
done

# 5. As the new user: clone, make demo. The clone stands in for one from the
# project's public repository.
as_user() { chroot "$R" /usr/bin/env -i TERM=dumb /bin/su - "$USER_NAME" -c "$1"; }
say "as $USER_NAME: git clone, git checkout $COMMIT"
as_user "git clone -q /src/telestation.git telestation && cd telestation && git checkout -q $COMMIT" ||
    die "cloning commit $COMMIT from $GITDIR failed"
say "as $USER_NAME: make demo"
set +e
as_user 'cd telestation && make demo' 2>&1 | tee "$CACHE/demo.log"
status=${PIPESTATUS[0]}
set -e
t_demo=$(now)

cleanup
verified=$(grep -c "matches the station's" "$CACHE/demo.log" || true)
summary="commit $COMMIT, $(date -u +%Y-%m-%dT%H:%M:%SZ): base $((t_base - t0)) s, prerequisites $((t_prereqs - t_base)) s, clone and make demo $((t_demo - t_prereqs)) s, total $((t_demo - t0)) s"
echo "$summary" > "$CACHE/last-run.txt"
say "$summary"
if [ "$status" != 0 ]; then die "make demo exited $status in the fresh root; see $CACHE/demo.log (the root is kept in $R)"; fi
grep -q '^demo OK:' "$CACHE/demo.log" || die "make demo exited 0 but did not print 'demo OK:'; see $CACHE/demo.log"
[ "$verified" -ge 1 ] || die "make demo printed no sha256 verification; see $CACHE/demo.log"
say "PASS: make demo from a clean clone on a fresh Debian 12, $verified images' sha256 verified"
remove_root "$R"
