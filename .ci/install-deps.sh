#!/usr/bin/env bash
# Installs every system package the tests need on a fresh Debian 12 machine.
# Idempotent: re-running it on a machine that has everything is quick.
set -euo pipefail

need_apt=0
for pkg in libxen-dev busybox-static cpio gcc binutils; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt=1
done

qemu_ok() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 || return 1
  local major
  major=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n1)
  [ -n "$major" ] && [ "$major" -ge 8 ]
}
qemu_ok || need_apt=1

[ "$need_apt" = 1 ] || { echo "install-deps: everything present"; exit 0; }

export DEBIAN_FRONTEND=noninteractive
# bookworm-backports carries QEMU 10.0; bookworm's 7.2 mis-reports the error code of a
# refused `int $N` in long mode, which breaks ring-3 PV kernels.
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  mirror=$(grep -rhs '^URIs:' /etc/apt/sources.list.d/debian.sources | head -n1 | awk '{print $2}')
  [ -n "$mirror" ] || mirror=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | head -n1)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  cat > /etc/apt/sources.list.d/bookworm-backports.sources <<SRC
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
apt-get update -q
apt-get install -y -q --no-install-recommends libxen-dev busybox-static cpio gcc binutils
qemu_ok || apt-get install -y -q --no-install-recommends -t bookworm-backports qemu-system-x86
qemu_ok || { echo "install-deps: qemu-system-x86_64 >= 8.0 is still missing" >&2; exit 1; }
echo "install-deps: done ($(qemu-system-x86_64 --version | head -n1))"
