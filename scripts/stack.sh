#!/usr/bin/env bash
# The whole hashgate flow on this machine: the local AWS stack (moto, from
# infra/template.yaml), the sample hash lists imported into its exact store, and the scanner
# running as a worker on its scan queue.
#
#   scripts/stack.sh up     start everything in the background (make up)
#   scripts/stack.sh down   stop the scanner and the stack (make down)
#   scripts/stack.sh run    up, upload sample files, report what happened, run until Ctrl-C
#
# Needs `make venv` and the debug binaries (the Makefile targets take care of both).
set -euo pipefail
cd "$(dirname "$0")/.."

state=${HASHGATE_STATE_DIR:-.local}
py=.venv/bin/python
bin=${CARGO_TARGET_DIR:-target}/debug
mkdir -p "$state"

scanner_running() {
  [[ -f $state/scanner.pid ]] && kill -0 "$(cat "$state/scanner.pid")" 2>/dev/null
}

up() {
  "$py" scripts/localstack.py up --state-dir "$state"
  set -a
  # shellcheck source=/dev/null
  . "$state/stack.env"
  set +a
  echo "== importing the sample hash lists into the stack's exact store"
  "$bin/hashgate" lists import tests/fixtures/plain.txt tests/fixtures/clearinghouse.csv \
    tests/fixtures/projectvic-1.3.json tests/fixtures/projectvic-2.0.json
  if scanner_running; then
    echo "== scanner already running (pid $(cat "$state/scanner.pid"))"
  else
    HASHGATE_LOG=${HASHGATE_LOG:-info} HASHGATE_FILTER_REFRESH_SECONDS=${HASHGATE_FILTER_REFRESH_SECONDS:-5} \
      nohup "$bin/scanner" >"$state/scanner.log" 2>&1 &
    echo $! >"$state/scanner.pid"
    echo "== scanner worker started (pid $!, log $state/scanner.log)"
  fi
  echo "== stack up; for scripts: set -a; . $state/stack.env; set +a"
}

down() {
  # On Ctrl-C the scanner has the signal too and may be gone already.
  if scanner_running && kill "$(cat "$state/scanner.pid")" 2>/dev/null; then
    echo "== scanner stopped"
  fi
  rm -f "$state/scanner.pid"
  if [[ -x $py ]]; then "$py" scripts/localstack.py down --state-dir "$state"; fi
}

run() {
  up
  local follower=""
  trap 'echo; [[ -n $follower ]] && kill "$follower" 2>/dev/null; down; exit 0' INT TERM
  "$py" scripts/demo.py --state-dir "$state"
  echo
  echo "== running: the scanner keeps watching the upload bucket. Ctrl-C stops everything."
  echo "   (in another shell: set -a; . $state/stack.env; set +a, then upload or import lists)"
  tail -n 0 -f "$state/scanner.log" &
  follower=$!
  wait
}

case ${1:-} in
  up) up ;;
  down) down ;;
  run) run ;;
  *) echo "usage: $0 up|down|run" >&2; exit 2 ;;
esac
