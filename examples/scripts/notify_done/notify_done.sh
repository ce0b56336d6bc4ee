#!/usr/bin/env bash
# Example external program for ncbackup: receives the original's arguments
# (--OBJECTIVES <folder> then --HOSTNAME ... --WORK_FOLDER ... for every GENERAL entry)
# and lists what the previous data section left in its folder. Its output goes into the log;
# a non-zero exit fails the section.
set -euo pipefail
objectives=""
while (($#)); do
  case "$1" in
    --OBJECTIVES) objectives="$2"; shift 2 ;;
    --*) shift 2 ;;
    *) shift ;;
  esac
done
if [ -z "$objectives" ] || [ ! -d "$objectives" ]; then
  echo "no folder to list: --OBJECTIVES '$objectives'" >&2
  exit 1
fi
echo "files ready in $objectives:"
ls -l "$objectives"
