#!/usr/bin/env bash
# The whole hashgate flow on this machine: the local AWS stack (moto, from
# infra/template.yaml, with the review queue's user pool and reviewers), the sample hash
# lists imported into its exact store, the scanner running as a worker on its scan queue,
# hashlist-sync running as a worker on the lists queue (list files dropped into the lists
# bucket's incoming/ are imported and published as signed filters), and the review API
# serving the reviewers' page on 127.0.0.1.
#
#   scripts/stack.sh up     start everything in the background (make up)
#   scripts/stack.sh down   stop the review API, the workers and the stack (make down)
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

sync_running() {
  [[ -f $state/hashlist-sync.pid ]] && kill -0 "$(cat "$state/hashlist-sync.pid")" 2>/dev/null
}

review_running() {
  [[ -f $state/review-api.pid ]] && kill -0 "$(cat "$state/review-api.pid")" 2>/dev/null
}

# Whether the review API answers 200 on /healthz (with the venv's Python: no curl needed).
review_healthy() {
  "$py" -c '
import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)' "$HASHGATE_REVIEW_URL"
}

review_failed() {
  echo "scripts/stack.sh: the review API $1; last lines of $state/review-api.log:" >&2
  tail -n 20 "$state/review-api.log" >&2 || true
  echo "(the stack and the workers are still up: make down stops them)" >&2
  exit 1
}

# The review API on HASHGATE_REVIEW_BIND (stack.env), up once /healthz answers 200.
start_review() {
  if review_running; then
    echo "== review API already running (pid $(cat "$state/review-api.pid"))"
    return
  fi
  HASHGATE_LOG=${HASHGATE_LOG:-info} nohup "$bin/review-api" >"$state/review-api.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$state/review-api.pid"
  local deadline=$((SECONDS + 30))
  until review_healthy && review_running; do
    if ! review_running; then
      rm -f "$state/review-api.pid"
      review_failed "exited before answering on $HASHGATE_REVIEW_URL/healthz"
    fi
    if ((SECONDS >= deadline)); then
      kill "$pid" 2>/dev/null || true
      rm -f "$state/review-api.pid"
      review_failed "(pid $pid) did not answer 200 on $HASHGATE_REVIEW_URL/healthz within 30 s"
    fi
    sleep 0.3
  done
  echo "== review API started (pid $pid, log $state/review-api.log)"
}

up() {
  "$py" scripts/localstack.py up --state-dir "$state"
  set -a
  # shellcheck source=/dev/null
  . "$state/stack.env"
  set +a
  echo "== importing the sample hash lists into the stack's exact store"
  "$bin/hashgate" lists import tests/fixtures/plain.txt tests/fixtures/clearinghouse.csv \
    tests/fixtures/projectvic-1.3.json tests/fixtures/projectvic-2.0.json \
    tests/fixtures/perceptual.csv
  if scanner_running; then
    echo "== scanner already running (pid $(cat "$state/scanner.pid"))"
  else
    HASHGATE_LOG=${HASHGATE_LOG:-info} HASHGATE_FILTER_REFRESH_SECONDS=${HASHGATE_FILTER_REFRESH_SECONDS:-5} \
      nohup "$bin/scanner" >"$state/scanner.log" 2>&1 &
    echo $! >"$state/scanner.pid"
    echo "== scanner worker started (pid $!, log $state/scanner.log)"
  fi
  if sync_running; then
    echo "== hashlist-sync already running (pid $(cat "$state/hashlist-sync.pid"))"
  else
    # Besides the lists queue's events, it sweeps incoming/ and pulls the sources every
    # HASHGATE_SYNC_INTERVAL_SECONDS (the deployed schedule's job).
    HASHGATE_LOG=${HASHGATE_LOG:-info} HASHGATE_SYNC_INTERVAL_SECONDS=${HASHGATE_SYNC_INTERVAL_SECONDS:-10} \
      nohup "$bin/hashlist-sync" >"$state/hashlist-sync.log" 2>&1 &
    echo $! >"$state/hashlist-sync.pid"
    echo "== hashlist-sync worker started (pid $!, log $state/hashlist-sync.log)"
  fi
  start_review
  echo "== stack up; for scripts: set -a; . $state/stack.env; set +a"
  echo
  echo "== review queue: $HASHGATE_REVIEW_URL"
  echo "   sign in as reviewer-a or reviewer-b (group reviewer), or admin-a (group admin);"
  echo "   their passwords are in $state/review-users.json"
}

down() {
  # On Ctrl-C the workers and the review API have the signal too and may be gone already.
  if review_running && kill "$(cat "$state/review-api.pid")" 2>/dev/null; then
    echo "== review API stopped"
  fi
  rm -f "$state/review-api.pid"
  if scanner_running && kill "$(cat "$state/scanner.pid")" 2>/dev/null; then
    echo "== scanner stopped"
  fi
  rm -f "$state/scanner.pid"
  if sync_running && kill "$(cat "$state/hashlist-sync.pid")" 2>/dev/null; then
    echo "== hashlist-sync stopped"
  fi
  rm -f "$state/hashlist-sync.pid"
  if [[ -x $py ]]; then "$py" scripts/localstack.py down --state-dir "$state"; fi
}

run() {
  up
  local follower=""
  trap 'echo; [[ -n $follower ]] && kill "$follower" 2>/dev/null; down; exit 0' INT TERM
  "$py" scripts/demo.py --state-dir "$state"
  echo
  echo "== running: the scanner keeps watching the upload bucket, hashlist-sync the lists"
  echo "   bucket's incoming/<list>/, the review queue is at $HASHGATE_REVIEW_URL"
  echo "   (users and passwords in $state/review-users.json). Ctrl-C stops everything."
  echo "   (in another shell: set -a; . $state/stack.env; set +a, then upload, or drop lists"
  echo "   into s3://$HASHGATE_LISTS_BUCKET/incoming/<list>/)"
  tail -n 0 -f "$state/scanner.log" "$state/hashlist-sync.log" "$state/review-api.log" &
  follower=$!
  wait
}

case ${1:-} in
  up) up ;;
  down) down ;;
  run) run ;;
  *) echo "usage: $0 up|down|run" >&2; exit 2 ;;
esac
