#!/usr/bin/env bash
# Set up the Django peer for `cargo bench --bench side_by_side` in a scratch folder.
#
# Usage: setup_django.sh PEER_DIR SCRATCH_DIR USERS
#
# Copies PEER_DIR (which may be read-only) to SCRATCH_DIR without its venv, databases and raw
# results, makes the files writable, installs Debian's python3-venv only if the interpreter
# cannot make a venv, creates SCRATCH_DIR/.venv with the peer's pinned requirements (its own
# setup.sh; reused while requirements.txt is unchanged), then seeds a fresh SQLite database with
# the peer's seed.sh: USERS users plus admin@example.com (staff) and user@example.com.
# Env: PYTHON (default /usr/bin/python3 when present, else python3).
set -euo pipefail
src=$1 dest=$2 users=$3
[ -f "$src/manage.py" ] || { echo "no Django peer at $src" >&2; exit 2; }
py=${PYTHON:-}
if [ -z "$py" ]; then
  if [ -x /usr/bin/python3 ]; then py=/usr/bin/python3; else py=python3; fi
fi
if ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "side_by_side: $py cannot make a venv; installing python3-venv (Debian)" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
  else
    sudo -n apt-get update -qq && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
  fi
fi
mkdir -p "$dest"
tar -C "$src" --exclude=./.venv --exclude='./db.sqlite3*' --exclude=__pycache__ \
    --exclude=./gunicorn.pid --exclude=./results -cf - . | tar -C "$dest" -xf -
chmod -R u+w "$dest"
want=$(sha256sum "$dest/requirements.txt" | cut -d' ' -f1)
stamp="$dest/.venv/.side-by-side-requirements"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  rm -rf "$dest/.venv"
  echo "side_by_side: creating the peer's venv (pinned requirements from PyPI)" >&2
  PYTHON=$py "$dest/setup.sh"
  echo "$want" >"$stamp"
fi
rm -f "$dest"/db.sqlite3 "$dest"/db.sqlite3-wal "$dest"/db.sqlite3-shm
"$dest/seed.sh" "$users"
