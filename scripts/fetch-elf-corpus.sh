#!/usr/bin/env bash
# fetch-elf-corpus.sh — the ELF files of other architectures that tests/test_elf_corpus.py
# reads against GNU readelf: Debian packages (apt, from the machine's own Debian mirror) and
# pyelftools' test files (its sdist, from PyPI), each pinned by sha256 in
# tests/fixtures/elf-corpus.txt and unpacked into ${GOTRACE_FIXTURES:-~/.cache/gotrace/fixtures}/elf.
#
# Idempotent (a file already unpacked is not fetched again). Debian's pool keeps a package
# only while a suite still carries it: a pin that no longer downloads (sid moves fastest)
# is named, and the manifest needs the new version and its sha256.
#
# Usage: bash scripts/fetch-elf-corpus.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
manifest=$root/tests/fixtures/elf-corpus.txt
dest=${GOTRACE_FIXTURES:-$HOME/.cache/gotrace/fixtures}/elf
python=${PYTHON:-$root/.venv/bin/python}
mkdir -p "$dest/downloads"
failed=0

mirror() {  # the Debian archive apt is configured with: where apt itself would fetch dpkg from
  local uri
  uri=$(apt-get download --print-uris dpkg 2>/dev/null | head -1 | cut -d"'" -f2)
  if [[ $uri == */pool/* ]]; then
    echo "${uri%%/pool/*}"
    return 0
  fi
  # no package lists yet (apt-get update never ran): the first .../debian archive apt's sources name
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | grep -oE '(https?|file)://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ')
  [[ -n $uri ]] || return 1
  echo "${uri%/}"
}

fetch_deb() {  # sha256 suite/arch pool-path [debian|tools]
  local sha=$1 arch=${2#*/} path=$3 file pkg out
  file=$(basename "$path")
  pkg=${file%%_*}
  out=$dest/${4:-debian}/$arch/$pkg
  [[ -f $out/.sha256 && $(cat "$out/.sha256") == "$sha" ]] && return 0
  if [[ -z ${base:-} ]]; then
    base=$(mirror) || { echo "fetch-elf-corpus: apt has no Debian archive configured" >&2; return 1; }
  fi
  if [[ ! -f $dest/downloads/$file ]] || ! echo "$sha  $dest/downloads/$file" | sha256sum -c --status; then
    rm -f "$dest/downloads/$file"
    /usr/lib/apt/apt-helper -o APT::Sandbox::User=root -o Debug::Acquire::http=0 download-file \
      "$base/$path" "$dest/downloads/$file" "SHA256:$sha" >/dev/null 2>&1 \
      || { echo "fetch-elf-corpus: could not fetch $path ($2) with sha256 $sha" >&2; return 1; }
  fi
  rm -rf "$out" && mkdir -p "$out"
  dpkg-deb -x "$dest/downloads/$file" "$out"
  echo "$sha" >"$out/.sha256"
}

fetch_sdist() {  # sha256 name==version file
  local sha=$1 req=$2 file=$3 name out
  name=${req%%==*}
  out=$dest/$name
  [[ -f $out/.sha256 && $(cat "$out/.sha256") == "$sha" ]] && return 0
  if [[ ! -f $dest/downloads/$file ]] || ! echo "$sha  $dest/downloads/$file" | sha256sum -c --status; then
    rm -f "$dest/downloads/$file"
    "$python" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
      -d "$dest/downloads" "$req" >/dev/null 2>&1 || true
    [[ -f $dest/downloads/$file ]] && echo "$sha  $dest/downloads/$file" | sha256sum -c --status \
      || { echo "fetch-elf-corpus: could not fetch $file ($req) with sha256 $sha" >&2; rm -f "$dest/downloads/$file"; return 1; }
  fi
  rm -rf "$out" && mkdir -p "$out"
  tar -xzf "$dest/downloads/$file" -C "$out" --strip-components=1 --wildcards "${file%.tar.gz}/test/testfiles_for_*"
  echo "$sha" >"$out/.sha256"
}

while read -r kind sha where what; do
  case $kind in
    deb) fetch_deb "$sha" "$where" "$what" || failed=1 ;;
    tool) fetch_deb "$sha" "$where" "$what" tools || failed=1 ;;
    sdist) fetch_sdist "$sha" "$where" "$what" || failed=1 ;;
    ''|\#*) ;;
    *) echo "fetch-elf-corpus: unknown line kind $kind in $manifest" >&2; failed=1 ;;
  esac
done <"$manifest"
exit $failed
