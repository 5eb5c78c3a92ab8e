#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need (Debian packages,
# PyPI packages into a private virtualenv), builds once into a shared cache directory, runs
# every test. Usage: scripts/test.sh [extra nextest args]
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${GATEHOUSE_CACHE:-$HOME/.cache/gatehouse}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
mkdir -p "$cache"

# Debian packages: real OpenSSH on both sides, rsync, the shells the corpus uses.
apt_pkgs=(openssh-server openssh-client rsync zsh vim less procps xauth)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# PyPI packages (pinned): an S3-compatible server, the asciinema CLI, pyarrow/duckdb.
venv="$cache/venv"
# requirements.txt names them; requirements.lock pins every transitive package too.
req=fixtures/requirements.txt
lock=fixtures/requirements.lock
if [ ! -x "$venv/bin/python" ] || ! cat "$req" "$lock" | cmp -s - "$venv/.requirements"; then
  echo "== installing PyPI packages into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" -c "$lock"
  cat "$req" "$lock" > "$venv/.requirements"
fi
export PATH="$venv/bin:$PATH"
export GATEHOUSE_TEST_PYTHON="$venv/bin/python"

echo "== building"
cargo build --workspace --all-targets --locked
echo "== testing"
cargo nextest run --workspace --locked --no-fail-fast "$@"
