#!/bin/bash
# A "program" in the stdio-adapter sense: one JSON event per line on stdin, one JSON answer per
# line on stdout. It keeps state between events (count) because it is started once per container.
count=0
while IFS= read -r event; do
  count=$((count + 1))
  case $event in
    *'"crash"'*) echo "crashing on purpose" >&2; exit 3 ;;   # -> Stdio.ProgramExited, restarted
    *'"prose"'*) echo "this is not JSON" ;;                    # -> Stdio.NotJson
    *) printf '{"count":%d,"pid":%d,"bytes":%d}\n' "$count" "$$" "${#event}" ;;
  esac
done
