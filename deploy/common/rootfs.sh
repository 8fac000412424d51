#!/bin/sh
# Assemble an image's root filesystem in DEST from Debian 12 packages: the glibc,
# OpenSSL and libstdc++ that the images' wheels link against, and Debian's Python 3.11
# with its standard library. No shell, no package manager, no pip. Shared by
# deploy/launches/Dockerfile and deploy/flowlogs/Dockerfile. Run on a Debian 12 host
# with apt lists present (the Dockerfiles' builder stages, and
# tests/deploy/test_*_image.py on this project's machines), so the images and their
# tests get the same files.
#
#   deploy/common/rootfs.sh DEST [USER_NAME]
#
# USER_NAME (default: streams) names uid/gid 10001 in /etc/passwd and /etc/group.
#
# This is the recipe of Google's distroless python3-debian12 image (packages unpacked,
# maintainer scripts not run), which distroless stopped building in 2026; doing it here
# keeps Debian 12's security updates (Debian LTS) coming with each rebuild.
set -eu

dest=${1:?usage: rootfs.sh DEST [USER_NAME]}
user=${2:-streams}
# No version pins: Debian's security archive keeps only the newest version of a
# package, so a pin would break the build at the next update.
packages="
    libc6 libgcc-s1 libstdc++6 libssl3 zlib1g libffi8 libexpat1 libbz2-1.0 liblzma5
    libcrypt1 libuuid1 python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
    media-types netbase tzdata
"

debs=$(mktemp -d)
trap 'rm -rf "$debs"' EXIT
# shellcheck disable=SC2086 # one word per package
(cd "$debs" && apt-get download -q $packages)

mkdir -p "$dest/var/lib/dpkg/status.d"
for deb in "$debs"/*.deb; do
    dpkg-deb --extract "$deb" "$dest"
    # Image scanners (ECR, Trivy) find Debian packages here, as in distroless images;
    # without it they would report no OS packages and so no OS vulnerabilities.
    dpkg-deb --field "$deb" >"$dest/var/lib/dpkg/status.d/$(dpkg-deb --field "$deb" Package)"
done

# Documentation is never read at run time; each package's copyright file stays, as its
# licence asks.
find "$dest/usr/share/doc" -mindepth 2 ! -name copyright -exec rm -rf {} + 2>/dev/null || true
rm -rf "$dest/usr/share/man" "$dest/usr/share/info" "$dest/usr/share/lintian" \
    "$dest/usr/share/bug" "$dest/usr/share/gdb" "$dest/usr/share/gcc" \
    "$dest/usr/share/locale"
# glibc's iconv modules (8.4 MB, 250 character sets): only iconv_open() of a character
# set glibc lacks built in (it has UTF-8, UTF-16, UTF-32, UCS-2, UCS-4 and ASCII) loads
# one, and nothing in these images calls iconv: Python, pyarrow and DuckDB decode text
# themselves.
rm -rf "$dest/usr/lib/x86_64-linux-gnu/gconv"

# CA certificates: the ca-certificates package builds its bundle in a maintainer
# script, which unpacking does not run, so the builder's bundle is copied. Without the
# OpenSSL package, Python's ssl module looks for it at /usr/lib/ssl/cert.pem.
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$dest/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$dest/usr/lib/ssl"
ln -sfn /etc/ssl/certs "$dest/usr/lib/ssl/certs"
ln -sfn /etc/ssl/certs/ca-certificates.crt "$dest/usr/lib/ssl/cert.pem"

# The user the processes run as (uid 10001, like the main image), named so that tools
# that look a uid up (getpass, the AWS SDK's home directory) find one. No login shell
# exists.
cat >"$dest/etc/passwd" <<PASSWD
root:x:0:0:root:/root:/sbin/nologin
$user:x:10001:10001:$user:/nonexistent:/sbin/nologin
PASSWD
cat >"$dest/etc/group" <<GROUP
root:x:0:
$user:x:10001:
GROUP
# glibc's default without this file asks DNS before /etc/hosts.
cat >"$dest/etc/nsswitch.conf" <<'NSSWITCH'
passwd: files
group: files
hosts: files dns
NSSWITCH
install -d -m 1777 "$dest/tmp"
install -d -m 0700 "$dest/root"

# `python`, as the ENTRYPOINTs name it (Debian ships only python3.11 in this package).
ln -sfn python3.11 "$dest/usr/bin/python"
ln -sfn python3.11 "$dest/usr/bin/python3"
