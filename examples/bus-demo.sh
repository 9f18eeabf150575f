#!/usr/bin/env bash
# One role of the bus demo (examples/bus-demo.toml): producer, worker, coordinator, auditor.
# Uses only `swarmdeck bus`; set SWARMDECK to another command (e.g. "python3 -m tui.cli").
set -u
bus() { ${SWARMDECK:-swarmdeck} bus "$@"; }
TASKS=${TASKS:-12}

case "$1" in
producer)  # declares the queues, then fans tasks out, most urgent first
  bus queue declare tasks --order priority --publishers producer --consumers 'worker-*'
  bus queue declare results --publishers 'worker-*' --consumers coordinator
  for i in $(seq 1 "$TASKS"); do
    prio=normal; [ $((i % 4)) -eq 0 ] && prio=high
    bus queue push tasks "{\"task\": $i}" --reliable --priority "$prio" >/dev/null
    echo "pushed task $i ($prio)"
  done
  bus broadcast '"all tasks queued"' >/dev/null
  ;;
worker)  # competes for tasks until the queue stays empty for 3 s
  while task=$(bus queue pop tasks --wait 3 -p); do
    n=$(printf '%s' "$task" | sed 's/[^0-9]//g')
    sleep 0.$((RANDOM % 5))
    bus queue push results "{\"task\": $n, \"square\": $((n * n)), \"by\": \"$SWARMDECK_SESSION\"}" \
      --reliable >/dev/null
    echo "task $n -> $((n * n))"
  done
  echo "no more tasks"
  ;;
auditor)  # answers one verification request
  bus subscribe audit.verify --count 1 > /tmp/audit.$$
  id=$(sed 's/.*"id": "\([^"]*\)".*/\1/' /tmp/audit.$$)
  echo "verifying: $(cat /tmp/audit.$$ | head -c 120)"
  bus reply "$id" '{"verdict": "sum checks out"}' >/dev/null
  rm -f /tmp/audit.$$
  ;;
coordinator)  # waits for every result, then asks the auditor (request/reply)
  total=0
  for _ in $(seq 1 "$TASKS"); do
    result=$(bus queue pop results -p)
    square=$(printf '%s' "$result" | sed 's/.*"square": \([0-9]*\).*/\1/')
    total=$((total + square))
    echo "result: $result"
  done
  echo "all $TASKS results in, sum of squares = $total"
  for _ in 1 2 3 4 5; do  # the auditor may not be subscribed yet: retry on no-responders (7)
    bus request audit.verify "{\"sum\": $total}" --timeout 5 -p && exit 0
    [ $? -eq 7 ] || exit 1
    sleep 1
  done
  exit 1
  ;;
esac
