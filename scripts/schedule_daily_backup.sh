#!/bin/sh
# Installs the daily duckbak backup job: runs `duckbak schedule install` with all arguments given,
# using the duckbak beside this script, else the one on PATH.
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
if [ -x "$here/duckbak" ] && [ ! -d "$here/duckbak" ]; then
  duckbak=$here/duckbak
elif duckbak=$(command -v duckbak); then
  :
else
  echo "$(basename -- "$0"): duckbak not found beside this script ($here) or on PATH" >&2
  exit 127
fi
exec "$duckbak" schedule install "$@"
