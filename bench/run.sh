#!/usr/bin/env bash
# Palisade benchmark harness. See docs/benchmarks.md.
#
#   bash bench/run.sh
#
# Builds palisade and the bare axum ceiling (examples/bare_hello.rs) in
# release mode, then measures, in one run, on 127.0.0.1 only:
#
#   a  the bare hello endpoint (the ceiling on this machine);
#   b  GET /api/data on palisade with the limit lifted (200s);
#   c  GET /api/data on palisade answered 429;
#   d  palisade's idle RSS;
#   e  a million distinct client keys (X-Forwarded-For through a trusted
#      proxy) against a 1/second policy swept every second, RSS right after
#      and once stale keys have been swept;
#   f  (extra) the same million keys with the sweep 60 s apart, so that
#      they are all held at once, RSS then and after the sweep;
#   g  GET /profile with a valid access token: the whole auth path (JWT
#      verification, then the session and user lookup in SQLite);
#   i  GET /api/data with the rate limiter in Redis (a redis-server of the
#      bench's own on a free port; limit lifted, so each request is one
#      Redis round trip and a 200);
#   j  the latency one Redis decision adds: GET /api/data over one
#      connection, without Redis and then with it, p50 and p99;
#   h  a login storm (STORM_CONNECTIONS connections of password grants,
#      limits lifted) while GET /profile runs beside it, against the ideal
#      login rate: cores / the time of one Argon2id hash, measured in the
#      same run by examples/hash_time.rs;
#   l  the same login storm alone, nothing beside it, against the ideal
#      rate measured just before it;
#   k  GET /profile on PostgreSQL + Redis (k: limiter in Redis; k0: rate
#      limiting off), with the database transactions it caused;
#   m  gateway mode: the bare hello as the upstream, requests straight to
#      it against the same requests through palisade (an anonymous route,
#      and an authenticated one with identity headers and the signed
#      identity): throughput ratio, and p50/p99 over one connection, so
#      the latency palisade adds;
#
# and prints a summary table with PASS/MISS against the targets.
#
# Environment (all optional):
#   DURATION=10s      each measured wrk run
#   WARMUP=2s         the wrk warm-up before each measured run
#   THREADS=2         wrk -t
#   CONNECTIONS=64    wrk -c
#   KEYS=1000000      requests (distinct keys) in scenarios e and f
#   KEYS_TIMEOUT=240  upper bound in seconds for each of their wrk runs
#   SWEEP_WAIT=5      seconds to wait for the sweep in scenario e
#   F_SWEEP_INTERVAL=60  seconds between sweeps in scenario f
#   ROUNDS=3          a, b and c run as a block this many times; the summary
#                     gives the medians, and every round's figures
#   SCENARIOS="a b c s d e f g h l i j k" which scenarios to run, in this order; "attrib"
#                     (optional, after a) measures b with parts of the
#                     stack switched off by settings
#   SERVER_ENV="VAR=VALUE ..."  extra environment for every palisade started
#                     (e.g. GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072)
#   SKIP_BUILD=1      use the binaries already in target/release
#   PALISADE_BIN=...  the palisade binary to measure (default target/release/palisade)
#   BUILD_TIMEOUT=1800  bound in seconds for the (locked) cargo build
#   RESULTS_DIR=...   keep wrk outputs and server logs there (else a
#                     temporary folder, removed on exit)
#   HOLD_LOCK=1       hold /tmp/palisade-cargo.lock while measuring, so that
#                     no build run through it competes for the CPU (0: don't)
#   LOCK_WAIT=1800    seconds to wait for that lock
#   QUIET_BUSY=20     before each scenario, wait (up to QUIET_TIMEOUT=120 s)
#                     until the machine is less than this % busy
#
# To add a scenario X: write scenario_X (start a server with start_palisade
# NAME VAR=VALUE... or start_server, measure with run_wrk / flood_keys /
# vm_kib, store figures with `add KEY VALUE` or RESULT[KEY]=..., stop the
# server with stop_pid), add X to SCENARIOS, and add rows to summary().
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
KEYS=${KEYS:-1000000}
KEYS_TIMEOUT=${KEYS_TIMEOUT:-240}
SWEEP_WAIT=${SWEEP_WAIT:-5}
SCENARIOS=${SCENARIOS:-"a b c s d e f g h l i j k"}
ROUNDS=${ROUNDS:-3}
SKIP_BUILD=${SKIP_BUILD:-0}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-1800}
CARGO_LOCK=/tmp/palisade-cargo.lock
HOLD_LOCK=${HOLD_LOCK:-1}
LOCK_WAIT=${LOCK_WAIT:-1800}
QUIET_BUSY=${QUIET_BUSY:-20}
QUIET_TIMEOUT=${QUIET_TIMEOUT:-120}
SERVER_ENV=${SERVER_ENV:-}

PALISADE_BIN=${PALISADE_BIN:-$ROOT/target/release/palisade}
BARE_BIN=$ROOT/target/release/examples/bare_hello
HASH_BIN=$ROOT/target/release/examples/hash_time
LOGIN_LUA=$ROOT/bench/login.lua
IPS_LUA=$ROOT/bench/distinct_ips.lua

# Targets.
TARGET_RATIO_PCT=70       # b and c, as a percentage of a
TARGET_TLS_PCT=60         # s: /api/data over TLS, as a percentage of the bare hello over TLS
TARGET_IDLE_RSS_MIB=20    # d
TARGET_KEYS_RSS_MIB=200   # e and f, right after the million keys
TARGET_PROFILE_PCT=50     # g, as a percentage of a
TARGET_PROFILE_SCALE_PCT=40  # k, as a percentage of a
TARGET_PROFILE_P99_MS=5   # g, at CONNECTIONS connections
TARGET_LOGIN_PCT=90       # h, login/s as a percentage of cores / hash time
TARGET_STORM_P99_MS=10    # h, /profile p99 during the storm
TARGET_REDIS_PCT=35       # i, /api/data with the limiter in Redis, as a percentage of a
STORM_CONNECTIONS=${STORM_CONNECTIONS:-50}   # h: connections of the login storm
STORM_PROFILE_CONNECTIONS=${STORM_PROFILE_CONNECTIONS:-8}  # h: /profile beside it

# ---------------------------------------------------------------- plumbing

WORK=$(mktemp -d "${TMPDIR:-/tmp}/palisade-bench.XXXXXX")
if [ -n "${RESULTS_DIR:-}" ]; then
  mkdir -p "$RESULTS_DIR"
  RESULTS=$(cd "$RESULTS_DIR" && pwd)
else
  RESULTS=$WORK/results
  mkdir -p "$RESULTS"
fi

PIDS=()            # every process this script starts in the background
declare -A RESULT  # scenario figures, read by summary()
ATTRIB_LINES=()    # rows of the optional attribution table
NOISY=()           # scenarios that started on a busy machine

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }

# median VALUES...: the median of numbers (the mean of the middle two for
# an even count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]
    else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# add KEY VALUE: appends VALUE to RESULT[KEY_all] (one per round) and sets
# RESULT[KEY] to the median of the rounds so far.
add() {
  local key=$1 value=$2
  RESULT[${key}_all]="${RESULT[${key}_all]:+${RESULT[${key}_all]} }$value"
  # shellcheck disable=SC2086
  RESULT[$key]=$(median ${RESULT[${key}_all]})
}
die() { log "ERROR: $*"; exit 1; }

track() { PIDS+=("$1"); }

# Whether PID runs (an exited child not yet waited for does not).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]
}

# Stops one process started by this script: TERM, then KILL after 5 s.
stop_pid() {
  local pid=$1 i
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
      alive "$pid" || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$? pid
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do
    stop_pid "$pid"
  done
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# "10s", "2m", "1h" or a plain number of seconds -> seconds.
to_seconds() {
  local d=$1
  case $d in
    *ms) echo 1 ;;
    *s) echo "${d%s}" ;;
    *m) echo $(( ${d%m} * 60 )) ;;
    *h) echo $(( ${d%h} * 3600 )) ;;
    *) echo "$d" ;;
  esac
}

# A TCP port on 127.0.0.1 that nothing listens on, below the kernel's
# ephemeral range (wrk's and curl's client ports, some in TIME-WAIT, live
# there).
free_port() {
  local low port
  low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  for port in $(shuf -i "10000-$(( low - 1 ))" -n 50); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# wait_http URL PID: 0 once URL answers 200, 1 if PID exits first, 2 after
# 10 s.
wait_http() {
  local url=$1 pid=$2 i
  for i in $(seq 200); do
    alive "$pid" || return 1
    if curl -fsSk -o /dev/null --max-time 1 "$url" 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  return 2
}

# VmRSS / VmHWM of PID in KiB.
vm_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
kib_to_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# start_server NAME HEALTH_PATH COMMAND...: runs COMMAND (in which the word
# @PORT is replaced by a free port) in the background, from an empty folder,
# with its output in RESULTS/NAME.server.log, and waits until HEALTH_PATH
# answers 200. Retries on another port if the server exits first (a port
# taken in between). Sets SERVER_PID and SERVER_URL.
start_server() {
  local name=$1 health=$2
  shift 2
  local logfile=$RESULTS/$name.server.log attempt port arg status
  local -a cmd
  for attempt in 1 2 3; do
    port=$(free_port) || die "no free port found"
    cmd=()
    for arg in "$@"; do cmd+=("${arg//@PORT/$port}"); done
    (cd "$WORK" && exec 9>&- && exec "${cmd[@]}") >"$logfile" 2>&1 &
    SERVER_PID=$!
    track "$SERVER_PID"
    SERVER_URL=$SCHEME://127.0.0.1:$port
    status=0
    wait_http "$SERVER_URL$health" "$SERVER_PID" || status=$?
    case $status in
      0) log "$name up on $SERVER_URL (pid $SERVER_PID)"; return 0 ;;
      1) log "$name exited before answering (attempt $attempt):"; cat "$logfile" >&2 ;;
      *) cat "$logfile" >&2; die "$name did not answer $SERVER_URL$health within 10 s" ;;
    esac
  done
  die "$name would not start"
}

# start_palisade NAME [VAR=VALUE ...]: target/release/palisade serve on a
# free port with a fresh data folder, in an empty environment apart from
# PATH, PALISADE_LOG_LEVEL=warn, SERVER_ENV and the given variables (so neither this
# shell's PALISADE_* / DATABASE_URL nor a .env file can change the run);
# waits for /health/live. Sets SERVER_PID and SERVER_URL.
start_palisade() {
  local name=$1
  shift
  local data
  local -a extra=()
  data=$(mktemp -d "$WORK/data-$name.XXXXXX")
  [ -z "$SERVER_ENV" ] || read -r -a extra <<<"$SERVER_ENV"
  start_server "palisade-$name" /health/live \
    env -i PATH="$PATH" PALISADE_LOG_LEVEL=warn "${extra[@]}" "$@" \
    "$PALISADE_BIN" serve --bind "127.0.0.1:@PORT" --data-dir "$data"
}

start_bare() {
  start_server bare_hello / env -i PATH="$PATH" "$BARE_BIN" "127.0.0.1:@PORT"
}

# Latency as wrk prints it ("850.00us", "1.23ms", "1.02s", "1.50m") -> ms.
latency_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") f = 0.001; else if (u == "ms") f = 1; else if (u == "s") f = 1000
    else if (u == "m") f = 60000; else if (u == "h") f = 3600000; else { print "?"; exit }
    printf "%.3f", n * f
  }'
}

# parse_wrk FILE: sets WRK_RPS, WRK_P99_MS, WRK_REQUESTS, WRK_NON2XX,
# WRK_SOCKET_ERRORS from wrk --latency output.
parse_wrk() {
  local file=$1 p99
  WRK_RPS=$(awk '$1 == "Requests/sec:" { print $2 }' "$file")
  p99=$(awk '$1 == "99%" { print $2; exit }' "$file")
  WRK_REQUESTS=$(awk '$2 == "requests" && $3 == "in" { print $1 }' "$file")
  WRK_NON2XX=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$file")
  WRK_SOCKET_ERRORS=$(awk '/Socket errors:/ {
    s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) s += $i + 0; print s }' "$file")
  WRK_NON2XX=${WRK_NON2XX:-0}
  WRK_SOCKET_ERRORS=${WRK_SOCKET_ERRORS:-0}
  if [ -z "$WRK_RPS" ] || [ -z "$p99" ] || [ -z "$WRK_REQUESTS" ]; then
    cat "$file" >&2
    die "cannot parse wrk output $file"
  fi
  WRK_P99_MS=$(latency_ms "$p99")
}

# "BUSY IDLE": clock ticks all CPUs have spent busy and idle since boot.
sys_ticks() { awk '$1 == "cpu" { print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat; }

# CPU time (user + system) PID has used, in clock ticks.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# run_wrk NAME URL [wrk args...]: a WARMUP run, then a DURATION run with
# THREADS/CONNECTIONS and --latency; parses the measured one (parse_wrk).
# Also sets WRK_SERVER_CPU_US: the CPU time SERVER_PID spent per request
# during the measured run, in microseconds.
run_wrk() {
  local name=$1 url=$2
  shift 2
  local out=$RESULTS/$name.wrk.txt
  local bound=$(( $(to_seconds "$WARMUP") + $(to_seconds "$DURATION") + 60 ))
  if [ "$(to_seconds "$WARMUP")" != 0 ]; then
    timeout -k 5 "$bound" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$@" "$url" \
      >"$RESULTS/$name.warmup.txt" 2>&1 9>&- || die "wrk warm-up for $name failed"
  fi
  log "wrk $name: -t$THREADS -c$CONNECTIONS -d$DURATION $url"
  local cpu0 cpu1 sys0 sys1 wrk_cpu
  cpu0=$(cpu_ticks "$SERVER_PID")
  sys0=$(sys_ticks)
  local TIMEFORMAT='%U %S'
  { time timeout -k 5 "$bound" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" \
    >"$out" 2>&1 9>&- ; } 2>"$out.time" || { cat "$out" >&2; die "wrk for $name failed"; }
  cpu1=$(cpu_ticks "$SERVER_PID")
  sys1=$(sys_ticks)
  parse_wrk "$out"
  WRK_SERVER_CPU_US=$(awk -v t=$(( cpu1 - cpu0 )) -v hz="$CLK_TCK" -v n="$WRK_REQUESTS" \
    'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "-" }')
  wrk_cpu=$(awk -v hz="$CLK_TCK" '{ printf "%d", ($1 + $2) * hz }' "$out.time")
  # What the rest of the machine used meanwhile, as a share of all CPUs.
  WRK_OTHER_PCT=$(awk -v a="$sys0" -v b="$sys1" -v s=$(( cpu1 - cpu0 )) -v w="$wrk_cpu" 'BEGIN {
    split(a, x, " "); split(b, y, " "); total = (y[1] - x[1]) + (y[2] - x[2])
    other = (y[1] - x[1]) - s - w; if (other < 0) other = 0
    if (total > 0) printf "%d", 100 * other / total; else print 0 }')
  log "  $WRK_RPS req/s, p99 $WRK_P99_MS ms, $WRK_REQUESTS requests, non-2xx $WRK_NON2XX, socket errors $WRK_SOCKET_ERRORS, server CPU $WRK_SERVER_CPU_US us/request, other processes ${WRK_OTHER_PCT}% of the CPUs"
  if [ "$WRK_OTHER_PCT" -ge "$QUIET_BUSY" ]; then
    log "WARNING: other processes used ${WRK_OTHER_PCT}% of the CPUs during $name"
    NOISY+=("$name (others used ${WRK_OTHER_PCT}% of the CPUs during the run)")
  fi
}

# status_of URL [curl args...]: the HTTP status code (000 when there is
# no answer).
status_of() {
  local url=$1
  shift
  curl -sk -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url" || true
}

# How busy all CPUs are over one second, in percent.
cpu_busy_pct() {
  local a b
  a=$(sys_ticks)
  sleep 1
  b=$(sys_ticks)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
    busy = y[1] - x[1]; idle = y[2] - x[2]
    if (busy + idle > 0) printf "%d", 100 * busy / (busy + idle); else print 0 }'
}

# wait_quiet NAME: waits until the machine is idle enough to measure
# (nothing of this script runs between scenarios); notes NAME as noisy if
# it never is.
wait_quiet() {
  local busy deadline=$(( SECONDS + QUIET_TIMEOUT ))
  while :; do
    busy=$(cpu_busy_pct)
    [ "$busy" -lt "$QUIET_BUSY" ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "WARNING: the machine is still ${busy}% busy; measuring $1 anyway"
      NOISY+=("$1 (${busy}% busy)")
      return 0
    fi
    log "the machine is ${busy}% busy (other processes): waiting"
    sleep 4
  done
}

# Holds the cargo lock (on fd 9, closed in the servers) until this script
# exits, so that builds run through it wait instead of sharing the CPU.
hold_lock() {
  [ "$HOLD_LOCK" = 1 ] || return 0
  exec 9>>"$CARGO_LOCK"
  if ! flock -n 9; then
    log "waiting for $CARGO_LOCK (a build is running), at most ${LOCK_WAIT}s"
    flock -w "$LOCK_WAIT" 9 || die "could not take $CARGO_LOCK"
  fi
  log "holding $CARGO_LOCK while measuring"
}

# ---------------------------------------------------------------- build

build() {
  if [ "$SKIP_BUILD" = 1 ]; then
    log "SKIP_BUILD=1: using the binaries in target/release"
  else
    log "building (waits for $CARGO_LOCK if another cargo holds it)"
    timeout -k 10 "$BUILD_TIMEOUT" flock "$CARGO_LOCK" \
      cargo build --release --bin palisade --example bare_hello --example hash_time ||
      die "cargo build failed"
  fi
  [ -x "$PALISADE_BIN" ] || die "$PALISADE_BIN is missing"
  [ -x "$BARE_BIN" ] || die "$BARE_BIN is missing"
  [ -x "$HASH_BIN" ] || die "$HASH_BIN is missing"
}

# ---------------------------------------------------------------- scenarios

# a: the ceiling.
scenario_a() {
  start_bare
  local pid=$SERVER_PID
  run_wrk a "$SERVER_URL/"
  [ "$WRK_NON2XX" = 0 ] || log "WARNING: the bare hello answered $WRK_NON2XX non-2xx"
  add a_rps "$WRK_RPS"; add a_p99 "$WRK_P99_MS"; add a_cpu "$WRK_SERVER_CPU_US"
  add a_other "$WRK_OTHER_PCT"; add a_non2xx "$WRK_NON2XX"
  stop_pid "$pid"
}

# b: GET /api/data, limit lifted: every answer is a 200 through the whole
# stack and the limiter.
scenario_b() {
  start_palisade b PALISADE_RATE_LIMIT_POLICIES='data=1000000000/second per ip'
  local pid=$SERVER_PID
  [ "$(status_of "$SERVER_URL/api/data")" = 200 ] || die "b: GET /api/data is not 200"
  run_wrk b "$SERVER_URL/api/data"
  [ "$WRK_NON2XX" = 0 ] || log "WARNING: b got $WRK_NON2XX non-2xx answers"
  add b_rps "$WRK_RPS"; add b_p99 "$WRK_P99_MS"; add b_cpu "$WRK_SERVER_CPU_US"
  add b_other "$WRK_OTHER_PCT"; add b_non2xx "$WRK_NON2XX"
  add b_rss_after "$(kib_to_mib "$(vm_kib "$pid" VmRSS)")"
  # b against the a of the same round, run just before it.
  [ -z "${RESULT[a_rps]:-}" ] || add ba "$(pct "$WRK_RPS" "${RESULT[a_rps_all]##* }")"
  stop_pid "$pid"
}

# c: GET /api/data answered 429: the first request of the day passes, every
# later one is refused by the limiter.
scenario_c() {
  start_palisade c PALISADE_RATE_LIMIT_POLICIES='data=1/day per ip'
  local pid=$SERVER_PID first second
  first=$(status_of "$SERVER_URL/api/data")
  second=$(status_of "$SERVER_URL/api/data")
  if [ "$first" != 200 ] || [ "$second" != 429 ]; then
    die "c: expected 200 then 429 from /api/data, got $first then $second"
  fi
  run_wrk c "$SERVER_URL/api/data"
  # Every measured answer must be the 429.
  [ "$WRK_NON2XX" = "$WRK_REQUESTS" ] ||
    log "WARNING: c: $WRK_NON2XX of $WRK_REQUESTS answers were non-2xx (expected all)"
  add c_rps "$WRK_RPS"; add c_p99 "$WRK_P99_MS"; add c_cpu "$WRK_SERVER_CPU_US"
  add c_other "$WRK_OTHER_PCT"; add c_non2xx "$WRK_NON2XX"; add c_requests "$WRK_REQUESTS"
  [ -z "${RESULT[a_rps]:-}" ] || add ca "$(pct "$WRK_RPS" "${RESULT[a_rps_all]##* }")"
  stop_pid "$pid"
}

# d: idle RSS: a fresh server with the default settings, a few requests,
# then 2 s of idleness.
scenario_d() {
  start_palisade d
  local pid=$SERVER_PID i
  for i in $(seq 5); do
    status_of "$SERVER_URL/health/live" >/dev/null
    status_of "$SERVER_URL/health/ready" >/dev/null
    status_of "$SERVER_URL/api/data" >/dev/null
  done
  sleep 2
  RESULT[d_rss]=$(kib_to_mib "$(vm_kib "$pid" VmRSS)")
  RESULT[d_hwm]=$(kib_to_mib "$(vm_kib "$pid" VmHWM)")
  log "d: idle VmRSS ${RESULT[d_rss]} MiB (VmHWM ${RESULT[d_hwm]} MiB)"
  stop_pid "$pid"
}

# check_forwarded_keying: on the server at SERVER_URL (trusting 127.0.0.1,
# data=1/<period> per ip), the forwarded address is the client: two
# requests from one address are 200 then 429, another address is 200.
check_forwarded_keying() {
  local s1 s2 s3
  s1=$(status_of "$SERVER_URL/api/data" -H 'X-Forwarded-For: 203.0.113.7')
  s2=$(status_of "$SERVER_URL/api/data" -H 'X-Forwarded-For: 203.0.113.7')
  s3=$(status_of "$SERVER_URL/api/data" -H 'X-Forwarded-For: 203.0.113.8')
  if [ "$s1 $s2 $s3" != "200 429 200" ]; then
    die "$1: X-Forwarded-For from 127.0.0.1 is not keyed as the client ($s1 $s2 $s3, expected 200 429 200)"
  fi
}

# flood_keys NAME: KEYS requests to SERVER_URL/api/data, each with a
# distinct X-Forwarded-For address (bench/distinct_ips.lua), bounded by
# KEYS_TIMEOUT. Sets WRK_* (parse_wrk) and FLOOD_SECONDS.
flood_keys() {
  local name=$1 marks=$WORK/marks-$1 out=$RESULTS/$1.wrk.txt
  mkdir -p "$marks"
  log "wrk $name: $KEYS distinct X-Forwarded-For addresses (bound ${KEYS_TIMEOUT}s)"
  local start=$SECONDS
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${KEYS_TIMEOUT}s" --latency -s "$IPS_LUA" \
    "$SERVER_URL/api/data" -- "$KEYS" "$THREADS" "$marks" >"$out" 2>&1 9>&- &
  local wrk_pid=$!
  track "$wrk_pid"
  # Every thread writes a mark once it has sent its share; then SIGINT makes
  # wrk stop and print its summary. If wrk ends on its own (-d reached),
  # that is the bound.
  while alive "$wrk_pid"; do
    if [ "$(find "$marks" -name 'done.*' | wc -l)" -ge "$THREADS" ]; then
      sleep 0.2
      kill -INT "$wrk_pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  local wrk_status=0
  wait "$wrk_pid" || wrk_status=$?
  FLOOD_SECONDS=$(( SECONDS - start ))
  [ "$wrk_status" = 0 ] || { cat "$out" >&2; die "wrk for $name exited with $wrk_status"; }
  parse_wrk "$out"
  log "  $WRK_REQUESTS requests in ${FLOOD_SECONDS}s ($WRK_RPS req/s), p99 $WRK_P99_MS ms, non-2xx $WRK_NON2XX, socket errors $WRK_SOCKET_ERRORS"
  [ "$WRK_REQUESTS" -ge "$KEYS" ] ||
    log "WARNING: $name: only $WRK_REQUESTS of $KEYS requests completed within ${KEYS_TIMEOUT}s"
  [ "$WRK_NON2XX" = 0 ] ||
    log "WARNING: $name: $WRK_NON2XX answers were non-2xx (a repeated or mis-keyed address?)"
}

# record_flood PREFIX PID BEFORE_KIB: stores the flood's figures and the
# RSS right after it under PREFIX_*; sets AFTER_KIB.
record_flood() {
  local p=$1 pid=$2 before=$3
  AFTER_KIB=$(vm_kib "$pid" VmRSS)
  RESULT[${p}_hwm]=$(kib_to_mib "$(vm_kib "$pid" VmHWM)")
  RESULT[${p}_rss_before]=$(kib_to_mib "$before")
  RESULT[${p}_rss_peak]=$(kib_to_mib "$AFTER_KIB")
  RESULT[${p}_requests]=$WRK_REQUESTS RESULT[${p}_rps]=$WRK_RPS
  RESULT[${p}_non2xx]=$WRK_NON2XX RESULT[${p}_p99]=$WRK_P99_MS
  RESULT[${p}_seconds]=$FLOOD_SECONDS
  log "$p: right after: VmRSS ${RESULT[${p}_rss_peak]} MiB, VmHWM ${RESULT[${p}_hwm]} MiB"
}

# record_swept PREFIX PID BEFORE_KIB AFTER_KIB: the RSS once swept, and
# whether it fell back: PASS when at least half of what the flood added
# above the pre-flood RSS has been given back.
record_swept() {
  local p=$1 pid=$2 before=$3 after=$4 swept
  swept=$(vm_kib "$pid" VmRSS)
  RESULT[${p}_rss_swept]=$(kib_to_mib "$swept")
  if [ $(( swept - before )) -le $(( (after - before) / 2 )) ]; then
    RESULT[${p}_fallback]=PASS
  else
    RESULT[${p}_fallback]=MISS
  fi
}

# e: KEYS requests, each from a distinct client address behind the trusted
# proxy 127.0.0.1, against a 1/second policy swept every second. (Keys go
# stale one second after their request and are swept within the next
# second, so the store never holds more than a few seconds' worth of them:
# this measures memory under key churn; f measures a million held keys.)
scenario_e() {
  start_palisade e \
    PALISADE_TRUSTED_PROXIES=127.0.0.1 \
    PALISADE_RATE_LIMIT_POLICIES='data=1/second per ip' \
    PALISADE_RATE_LIMIT_SWEEP_INTERVAL=1s
  local pid=$SERVER_PID before
  check_forwarded_keying e
  before=$(vm_kib "$pid" VmRSS)
  flood_keys e
  record_flood e "$pid" "$before"
  local i samples=""
  for i in $(seq "$SWEEP_WAIT"); do
    sleep 1
    samples+="$(kib_to_mib "$(vm_kib "$pid" VmRSS)") "
  done
  RESULT[e_rss_samples]=$samples
  log "e: VmRSS each second after: ${samples}MiB"
  record_swept e "$pid" "$before" "$AFTER_KIB"
  stop_pid "$pid"
}

# f (extra): the same flood with the sweep F_SWEEP_INTERVAL apart, longer
# than the flood, so that all KEYS keys are held at once (less what the
# max_keys cap evicts: the default 1,000,000 is split into 64 shards of
# 15,625, and the fuller shards evict a tenth of their keys) when RSS is
# read; then RSS once the first sweep has run.
F_SWEEP_INTERVAL=${F_SWEEP_INTERVAL:-60}
scenario_f() {
  start_palisade f \
    PALISADE_TRUSTED_PROXIES=127.0.0.1 \
    PALISADE_RATE_LIMIT_POLICIES='data=1/second per ip' \
    PALISADE_RATE_LIMIT_SWEEP_INTERVAL="${F_SWEEP_INTERVAL}s"
  local pid=$SERVER_PID started=$SECONDS before
  check_forwarded_keying f
  before=$(vm_kib "$pid" VmRSS)
  flood_keys f
  record_flood f "$pid" "$before"
  if [ $(( SECONDS - started )) -ge "$F_SWEEP_INTERVAL" ]; then
    log "WARNING: f: the flood outlasted the sweep interval: keys were swept during it"
    RESULT[f_note]="swept during the flood"
  fi
  # The first sweep runs F_SWEEP_INTERVAL after the server started.
  local wait_s=$(( started + F_SWEEP_INTERVAL + 3 - SECONDS ))
  if [ "$wait_s" -gt 0 ]; then
    log "f: waiting ${wait_s}s for the sweep"
    sleep "$wait_s"
  fi
  record_swept f "$pid" "$before" "$AFTER_KIB"
  log "f: after the sweep: VmRSS ${RESULT[f_rss_swept]} MiB"
  stop_pid "$pid"
}

# The account and the limits of g and h: every policy lifted, so that only
# the work itself is measured.
AUTH_USER=benchuser
AUTH_PASSWORD='correct horse battery staple'
# The failed-login back-off counts logins in flight (issue 9), so 50
# concurrent logins of one account would be refused past the free ones:
# lifted too, to 100 (its maximum).
AUTH_ENV=(PALISADE_RATE_LIMIT_POLICIES='default=1000000000/second per ip; login=1000000000/second per ip; register=1000000000/second per ip'
  PALISADE_FAILED_LOGIN_FREE=100)

# start_auth NAME [ENV...]: palisade with AUTH_ENV (and ENV), the benchmark
# account registered; sets TOKEN to a fresh access token.
start_auth() {
  start_palisade "$@" "${AUTH_ENV[@]}"
  local body
  body=$(printf '{"email":"%s@example.org","username":"%s","name":"Bench","password":"%s"}' \
    "$AUTH_USER" "$AUTH_USER" "$AUTH_PASSWORD")
  [ "$(status_of "$SERVER_URL/auth/register" -H 'content-type: application/json' -d "$body")" = 201 ] ||
    die "$1: registration failed"
  TOKEN=$(curl -sS --max-time 10 "$SERVER_URL/auth/token" \
    --data-urlencode grant_type=password --data-urlencode "username=$AUTH_USER" \
    --data-urlencode "password=$AUTH_PASSWORD" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  [ -n "$TOKEN" ] || die "$1: no access token"
  [ "$(status_of "$SERVER_URL/profile" -H "Authorization: Bearer $TOKEN")" = 200 ] ||
    die "$1: GET /profile with the token is not 200"
}

# g: GET /profile with a valid token.
scenario_g() {
  start_auth g
  local pid=$SERVER_PID
  run_wrk g "$SERVER_URL/profile" -H "Authorization: Bearer $TOKEN"
  [ "$WRK_NON2XX" = 0 ] || log "WARNING: g got $WRK_NON2XX non-2xx answers"
  RESULT[g_rps]=$WRK_RPS RESULT[g_p99]=$WRK_P99_MS RESULT[g_cpu]=$WRK_SERVER_CPU_US
  RESULT[g_non2xx]=$WRK_NON2XX RESULT[g_other]=$WRK_OTHER_PCT
  RESULT[ga]=$(pct "$WRK_RPS" "${RESULT[a_rps]:-0}")
  stop_pid "$pid"
}

# h: a login storm beside GET /profile. The ideal login rate is cores
# divided by one hash (median of 10, measured here, on an idle machine).
scenario_h() {
  local hash_ms cores
  hash_ms=$("$HASH_BIN" 10) || die "h: hash_time failed"
  cores=$(nproc)
  RESULT[h_hash_ms]=$hash_ms
  RESULT[h_ideal]=$(awk -v c="$cores" -v h="$hash_ms" 'BEGIN { printf "%.1f", c * 1000 / h }')
  log "h: one Argon2id hash takes $hash_ms ms; ideal ${RESULT[h_ideal]} logins/s on $cores cores"
  start_auth h
  local pid=$SERVER_PID
  RESULT[h_rss_idle]=$(kib_to_mib "$(vm_kib "$pid" VmRSS)")
  local bound=$(( $(to_seconds "$DURATION") + 60 ))
  local storm=$RESULTS/h-storm.wrk.txt profile=$RESULTS/h-profile.wrk.txt
  timeout -k 5 "$bound" wrk -t"$THREADS" -c"$STORM_CONNECTIONS" -d"$DURATION" --latency \
    -s "$LOGIN_LUA" "$SERVER_URL/auth/token" -- "$AUTH_USER" "$AUTH_PASSWORD" >"$storm" 2>&1 9>&- &
  local storm_pid=$!
  track "$storm_pid"
  timeout -k 5 "$bound" wrk -t1 -c"$STORM_PROFILE_CONNECTIONS" -d"$DURATION" --latency \
    -H "Authorization: Bearer $TOKEN" "$SERVER_URL/profile" >"$profile" 2>&1 9>&- ||
    { cat "$profile" >&2; die "h: the /profile wrk failed"; }
  wait "$storm_pid" || { cat "$storm" >&2; die "h: the login wrk failed"; }
  RESULT[h_rss_peak]=$(kib_to_mib "$(vm_kib "$pid" VmHWM)")
  sleep 5
  RESULT[h_rss_after]=$(kib_to_mib "$(vm_kib "$pid" VmRSS)")
  log "h: RSS idle ${RESULT[h_rss_idle]} MiB, peak ${RESULT[h_rss_peak]} MiB, 5 s after the storm ${RESULT[h_rss_after]} MiB"
  parse_wrk "$storm"
  RESULT[h_logins]=$WRK_RPS RESULT[h_login_p99]=$WRK_P99_MS RESULT[h_login_non2xx]=$WRK_NON2XX
  RESULT[h_pct]=$(pct "$WRK_RPS" "${RESULT[h_ideal]}")
  parse_wrk "$profile"
  RESULT[h_profile_rps]=$WRK_RPS RESULT[h_profile_p99]=$WRK_P99_MS RESULT[h_profile_non2xx]=$WRK_NON2XX
  log "h: ${RESULT[h_logins]} logins/s (${RESULT[h_pct]}% of ideal), /profile p99 ${RESULT[h_profile_p99]} ms at ${RESULT[h_profile_rps]} req/s"
  stop_pid "$pid"
}

# l: the login storm of h alone (nothing else running, every limit lifted):
# how close the hashing pool comes to cores / hash time.
scenario_l() {
  local hash_ms cores
  hash_ms=$("$HASH_BIN" 10) || die "l: hash_time failed"
  cores=$(nproc)
  RESULT[l_hash_ms]=$hash_ms
  RESULT[l_ideal]=$(awk -v c="$cores" -v h="$hash_ms" 'BEGIN { printf "%.1f", c * 1000 / h }')
  start_auth l
  local pid=$SERVER_PID
  local bound=$(( $(to_seconds "$DURATION") + 60 ))
  local storm=$RESULTS/l-storm.wrk.txt
  timeout -k 5 "$bound" wrk -t"$THREADS" -c"$STORM_CONNECTIONS" -d"$DURATION" --latency \
    -s "$LOGIN_LUA" "$SERVER_URL/auth/token" -- "$AUTH_USER" "$AUTH_PASSWORD" >"$storm" 2>&1 9>&- ||
    { cat "$storm" >&2; die "l: the login wrk failed"; }
  parse_wrk "$storm"
  RESULT[l_logins]=$WRK_RPS RESULT[l_non2xx]=$WRK_NON2XX
  RESULT[l_pct]=$(pct "$WRK_RPS" "${RESULT[l_ideal]}")
  log "l: one hash $hash_ms ms, ideal ${RESULT[l_ideal]}/s; ${RESULT[l_logins]} logins/s alone (${RESULT[l_pct]}% of ideal), non-2xx $WRK_NON2XX"
  stop_pid "$pid"
}

# s: HTTPS at both ends, the same rustls configuration (src/http/tls.rs)
# and a P-256 certificate made here by openssl: the bare hello over TLS
# against GET /api/data over TLS (limit lifted), ROUNDS rounds, each pair
# back to back; medians. wrk speaks HTTP/1.1 and keeps its connections,
# so this measures requests over TLS, not handshakes.
SCHEME=http
scenario_s() {
  command -v openssl >/dev/null || die "s: openssl is not installed"
  local cert=$WORK/tls-cert.pem key=$WORK/tls-key.pem round pid
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=localhost -keyout "$key" -out "$cert" >/dev/null 2>&1 || die "s: openssl failed"
  SCHEME=https
  for round in $(seq "$ROUNDS"); do
    log "s: round $round of $ROUNDS"
    start_server bare_hello_tls / env -i PATH="$PATH" BARE_TLS_CERT="$cert" BARE_TLS_KEY="$key" \
      "$BARE_BIN" "127.0.0.1:@PORT"
    pid=$SERVER_PID
    run_wrk s-bare "$SERVER_URL/"
    add s_bare_rps "$WRK_RPS"; add s_bare_cpu "$WRK_SERVER_CPU_US"
    stop_pid "$pid"
    start_palisade s PALISADE_TLS_CERT="$cert" PALISADE_TLS_KEY="$key" \
      PALISADE_RATE_LIMIT_POLICIES='data=1000000000/second per ip'
    pid=$SERVER_PID
    [ "$(status_of "$SERVER_URL/api/data")" = 200 ] || die "s: GET /api/data over TLS is not 200"
    run_wrk s-palisade "$SERVER_URL/api/data"
    [ "$WRK_NON2XX" = 0 ] || log "WARNING: s got $WRK_NON2XX non-2xx answers"
    add s_rps "$WRK_RPS"; add s_cpu "$WRK_SERVER_CPU_US"; add s_p99 "$WRK_P99_MS"
    add s_pct "$(pct "$WRK_RPS" "${RESULT[s_bare_rps_all]##* }")"
    stop_pid "$pid"
  done
  SCHEME=http
}

# attrib (optional, not in the default SCENARIOS): where b's cost goes.
# GET /api/data with the limit lifted, as in b, with parts of the stack
# switched off through settings (no code change): the docs routes, the
# optional response headers, rate limiting, and all three; ROUNDS rounds
# of all variants, medians. Put it after a for the "% of a" column.
ATTRIB_VARIANTS=(
  "full|"
  "no docs routes|PALISADE_DOCS=false"
  "no optional headers|PALISADE_HSTS=false PALISADE_CONTENT_SECURITY_POLICY= PALISADE_FRAME_OPTIONS= PALISADE_CONTENT_TYPE_OPTIONS= PALISADE_REFERRER_POLICY= PALISADE_PERMISSIONS_POLICY= PALISADE_CROSS_ORIGIN_OPENER_POLICY= PALISADE_CROSS_ORIGIN_RESOURCE_POLICY= PALISADE_XSS_PROTECTION= PALISADE_CACHE_CONTROL="
  "rate limiting off|PALISADE_RATE_LIMIT_ENABLED=false"
  "all three off|PALISADE_DOCS=false PALISADE_RATE_LIMIT_ENABLED=false PALISADE_HSTS=false PALISADE_CONTENT_SECURITY_POLICY= PALISADE_FRAME_OPTIONS= PALISADE_CONTENT_TYPE_OPTIONS= PALISADE_REFERRER_POLICY= PALISADE_PERMISSIONS_POLICY= PALISADE_CROSS_ORIGIN_OPENER_POLICY= PALISADE_CROSS_ORIGIN_RESOURCE_POLICY= PALISADE_XSS_PROTECTION= PALISADE_CACHE_CONTROL="
)
scenario_attrib() {
  local round i label vars pid
  local -a env_vars
  for round in $(seq "$ROUNDS"); do
    for i in "${!ATTRIB_VARIANTS[@]}"; do
      label=${ATTRIB_VARIANTS[$i]%%|*}
      vars=${ATTRIB_VARIANTS[$i]#*|}
      read -r -a env_vars <<<"$vars"
      log "attrib: $label (round $round of $ROUNDS)"
      start_palisade "attrib$i" PALISADE_RATE_LIMIT_POLICIES='data=1000000000/second per ip' "${env_vars[@]}"
      pid=$SERVER_PID
      RESULT[attrib${i}_bytes]=$(curl -sS -i --max-time 5 "$SERVER_URL/api/data" | wc -c)
      run_wrk "attrib$i" "$SERVER_URL/api/data"
      add "attrib${i}_rps" "$WRK_RPS"
      add "attrib${i}_cpu" "$WRK_SERVER_CPU_US"
      stop_pid "$pid"
    done
  done
  ATTRIB_LINES=()
  for i in "${!ATTRIB_VARIANTS[@]}"; do
    ATTRIB_LINES+=("$(printf '| %-22s | %10s | %9s | %10s | %14s | %s' "${ATTRIB_VARIANTS[$i]%%|*}" \
      "$(r "attrib${i}_rps")" "$(pct "$(r "attrib${i}_rps")" "${RESULT[a_rps]:-0}")" \
      "$(r "attrib${i}_cpu")" "$(r "attrib${i}_bytes")" "$(r "attrib${i}_rps_all")")")
  done
}

# ---------------------------------------------------------------- summary

# pct NUM DEN: NUM as a percentage of DEN.
pct() { awk -v n="$1" -v d="$2" 'BEGIN { if (n != "" && n != "-" && d > 0) printf "%.1f", 100 * n / d; else print "-" }'; }
# verdict VALUE OP LIMIT: PASS or MISS (OP is ">=" or "<=").
verdict() {
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
    if (v == "" || v == "-") { print "-"; exit }
    ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 <= l + 0)
    print ok ? "PASS" : "MISS" }'
}
r() { echo "${RESULT[$1]:--}"; }

# A redis-server of the bench's own on a free loopback port, no
# persistence. Sets REDIS_PID and REDIS_PORT.
start_redis() {
  command -v redis-server >/dev/null || die "redis-server is not installed (apt-get install redis-server)"
  REDIS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    >"$RESULTS/redis.log" 2>&1 &
  REDIS_PID=$!
  local n
  for n in $(seq 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "redis-server did not start on port $REDIS_PORT"
}

BENCH_SECRET=bench-only-signing-secret-5f0c2a9e1d7b43c8a6e4

# k: GET /profile as g, on PostgreSQL (a fresh database on the local
# server, dropped afterwards) with Redis carrying the session cache's
# invalidations, as a scaled-out instance runs. Two variants: "k" as
# deployed, so the default rate-limit policy is one GCRA decision in Redis
# per request (what scenario i measures alone), and "k0" with rate
# limiting off, the session cache's path alone. The number of database
# transactions during the wrk run (pg_stat_database.xact_commit) shows
# whether the cache answered: it must stay far below the requests.
scenario_k() {
  command -v psql >/dev/null || die "k: psql is not installed"
  local variant db pid before after
  for variant in k k0; do
    db="palisade_bench_${variant}_$$"
    psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $db" >/dev/null ||
      die "k: cannot create a database on 127.0.0.1:5432 (user postgres)"
    start_redis
    local -a extra=(DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
      REDIS_URL="redis://127.0.0.1:$REDIS_PORT" PALISADE_JWT_SECRET="$BENCH_SECRET")
    [ "$variant" = k ] || extra+=(PALISADE_RATE_LIMIT_ENABLED=false)
    start_auth "$variant" "${extra[@]}"
    pid=$SERVER_PID
    curl -s "$SERVER_URL/health/ready" | grep -q '"redis":"ok"' || die "$variant: palisade is not on Redis"
    before=$(psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT xact_commit FROM pg_stat_database WHERE datname = '$db'")
    run_wrk "$variant" "$SERVER_URL/profile" -H "Authorization: Bearer $TOKEN"
    after=$(psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT xact_commit FROM pg_stat_database WHERE datname = '$db'")
    [ "$WRK_NON2XX" = 0 ] || log "WARNING: $variant got $WRK_NON2XX non-2xx answers"
    RESULT[${variant}_rps]=$WRK_RPS RESULT[${variant}_p99]=$WRK_P99_MS RESULT[${variant}_cpu]=$WRK_SERVER_CPU_US
    RESULT[${variant}_non2xx]=$WRK_NON2XX RESULT[${variant}_xact]=$(( after - before ))
    RESULT[${variant}a]=$(pct "$WRK_RPS" "${RESULT[a_rps]:-0}")
    log "$variant: $(( after - before )) database transactions during the run (the statistics lag by up to a second)"
    stop_pid "$pid"
    stop_pid "$REDIS_PID"
    psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null || true
  done
}

# p50 of a wrk --latency output, in ms.
wrk_p50_ms() { latency_ms "$(awk '$1 == "50%" { print $2; exit }' "$1")"; }

# i: /api/data, every request one GCRA decision in Redis.
scenario_i() {
  start_redis
  start_palisade i REDIS_URL="redis://127.0.0.1:$REDIS_PORT" PALISADE_JWT_SECRET="$BENCH_SECRET" \
    PALISADE_RATE_LIMIT_POLICIES='data=1000000000/second per ip'
  local pid=$SERVER_PID
  [ "$(status_of "$SERVER_URL/api/data")" = 200 ] || die "i: GET /api/data is not 200"
  curl -s "$SERVER_URL/health/ready" | grep -q '"redis":"ok"' || die "i: palisade is not on Redis"
  run_wrk i "$SERVER_URL/api/data"
  [ "$WRK_NON2XX" = 0 ] || log "WARNING: i got $WRK_NON2XX non-2xx answers"
  add i_rps "$WRK_RPS"; add i_p99 "$WRK_P99_MS"; add i_cpu "$WRK_SERVER_CPU_US"
  add i_non2xx "$WRK_NON2XX"
  [ -z "${RESULT[a_rps]:-}" ] || add ia "$(pct "$WRK_RPS" "${RESULT[a_rps_all]##* }")"
  stop_pid "$pid"
  stop_pid "$REDIS_PID"
}

# j: one connection, so each request waits for the one before it: the
# latency a Redis decision adds is the difference between the two runs.
scenario_j() {
  start_palisade j-local PALISADE_RATE_LIMIT_POLICIES='data=1000000000/second per ip'
  local pid=$SERVER_PID
  THREADS=1 CONNECTIONS=1 run_wrk j-local "$SERVER_URL/api/data"
  local local_p50 local_p99=$WRK_P99_MS
  local_p50=$(wrk_p50_ms "$RESULTS/j-local.wrk.txt")
  stop_pid "$pid"
  start_redis
  start_palisade j-redis REDIS_URL="redis://127.0.0.1:$REDIS_PORT" PALISADE_JWT_SECRET="$BENCH_SECRET" \
    PALISADE_RATE_LIMIT_POLICIES='data=1000000000/second per ip'
  pid=$SERVER_PID
  THREADS=1 CONNECTIONS=1 run_wrk j-redis "$SERVER_URL/api/data"
  local redis_p50 redis_p99=$WRK_P99_MS
  redis_p50=$(wrk_p50_ms "$RESULTS/j-redis.wrk.txt")
  stop_pid "$pid"
  stop_pid "$REDIS_PID"
  add j_local_p50 "$local_p50"; add j_local_p99 "$local_p99"
  add j_redis_p50 "$redis_p50"; add j_redis_p99 "$redis_p99"
  add j_extra_p50 "$(awk -v a="$redis_p50" -v b="$local_p50" 'BEGIN { printf "%.3f", a - b }')"
  add j_extra_p99 "$(awk -v a="$redis_p99" -v b="$local_p99" 'BEGIN { printf "%.3f", a - b }')"
}

# m: gateway mode in front of the bare hello. Limits lifted (as in g), so
# every request is forwarded; "/" is `auth = "none"`, "/private" is
# `auth = "required"` (token checked, identity headers and the Ed25519
# identity JWT made for each request).
scenario_m() {
  start_bare
  local bare_pid=$SERVER_PID bare_url=$SERVER_URL
  run_wrk m-direct "$bare_url/private"
  add m_direct_rps "$WRK_RPS"
  THREADS=1 CONNECTIONS=1 run_wrk m-direct-1 "$bare_url/private"
  add m_direct_p50 "$(wrk_p50_ms "$RESULTS/m-direct-1.wrk.txt")"; add m_direct_p99 "$WRK_P99_MS"
  start_auth m PALISADE_SAMPLE_ROUTES=false PALISADE_GATEWAY_UPSTREAM="$bare_url" \
    PALISADE_GATEWAY_ROUTES='[{"path":"/","auth":"none"},{"path":"/private","auth":"required"}]'
  local pid=$SERVER_PID
  [ "$(status_of "$SERVER_URL/")" = 200 ] || die "m: GET / through the gateway is not 200"
  [ "$(status_of "$SERVER_URL/private")" = 401 ] || die "m: GET /private without a token is not 401"
  [ "$(status_of "$SERVER_URL/private" -H "Authorization: Bearer $TOKEN")" = 200 ] ||
    die "m: GET /private with a token is not 200"
  run_wrk m-anon "$SERVER_URL/"
  [ "$WRK_NON2XX" = 0 ] || log "WARNING: m-anon got $WRK_NON2XX non-2xx answers"
  add m_anon_rps "$WRK_RPS"; add m_anon_cpu "$WRK_SERVER_CPU_US"
  run_wrk m-auth "$SERVER_URL/private" -H "Authorization: Bearer $TOKEN"
  [ "$WRK_NON2XX" = 0 ] || log "WARNING: m-auth got $WRK_NON2XX non-2xx answers"
  add m_auth_rps "$WRK_RPS"; add m_auth_cpu "$WRK_SERVER_CPU_US"
  THREADS=1 CONNECTIONS=1 run_wrk m-anon-1 "$SERVER_URL/"
  add m_anon_p50 "$(wrk_p50_ms "$RESULTS/m-anon-1.wrk.txt")"; add m_anon_p99 "$WRK_P99_MS"
  THREADS=1 CONNECTIONS=1 run_wrk m-auth-1 "$SERVER_URL/private" -H "Authorization: Bearer $TOKEN"
  add m_auth_p50 "$(wrk_p50_ms "$RESULTS/m-auth-1.wrk.txt")"; add m_auth_p99 "$WRK_P99_MS"
  stop_pid "$pid"
  stop_pid "$bare_pid"
  local d50 d99 k
  d50=$(r m_direct_p50) d99=$(r m_direct_p99)
  for k in anon auth; do
    add "m_${k}_pct" "$(pct "$(r "m_${k}_rps")" "$(r m_direct_rps)")"
    add "m_${k}_add_p50" "$(awk -v a="$(r "m_${k}_p50")" -v b="$d50" 'BEGIN { printf "%.3f", a - b }')"
    add "m_${k}_add_p99" "$(awk -v a="$(r "m_${k}_p99")" -v b="$d99" 'BEGIN { printf "%.3f", a - b }')"
  done
}

summary() {
  local ba ca
  ba=$(r ba) ca=$(r ca)
  echo
  echo "Palisade benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, kernel $(uname -r)"
  [ -z "$SERVER_ENV" ] || echo "palisade started with SERVER_ENV: $SERVER_ENV"
  echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION (warm-up $WARMUP), $ROUNDS round(s) of a/b/c (medians), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
  echo
  printf '| %-44s | %14s | %-22s | %-6s |\n' "measure" "value" "target" "result"
  printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..24})" "$(printf -- '-%.0s' {1..8})"
  row() { [ "$2" = - ] || printf '| %-44s | %14s | %-22s | %-6s |\n' "$@"; }
  row "a  bare hello, req/s" "$(r a_rps)" "(ceiling)" ""
  row "a  bare hello, p99 ms" "$(r a_p99)" "" ""
  row "a  server CPU per request, us" "$(r a_cpu)" "" ""
  row "b  /api/data 200, req/s" "$(r b_rps)" "" ""
  row "b  /api/data 200, % of a" "$ba" ">= ${TARGET_RATIO_PCT}% of a" "$(verdict "$ba" ">=" "$TARGET_RATIO_PCT")"
  row "b  /api/data 200, p99 ms" "$(r b_p99)" "" ""
  row "b  server CPU per request, us" "$(r b_cpu)" "" ""
  row "c  /api/data 429, req/s" "$(r c_rps)" "" ""
  row "c  /api/data 429, % of a" "$ca" ">= ${TARGET_RATIO_PCT}% of a" "$(verdict "$ca" ">=" "$TARGET_RATIO_PCT")"
  row "c  /api/data 429, p99 ms" "$(r c_p99)" "" ""
  row "c  server CPU per request, us" "$(r c_cpu)" "" ""
  row "d  idle VmRSS, MiB" "$(r d_rss)" "<= ${TARGET_IDLE_RSS_MIB} MiB" "$(verdict "$(r d_rss)" "<=" "$TARGET_IDLE_RSS_MIB")"
  row "e  requests with distinct keys" "$(r e_requests)" ">= $KEYS" "$(verdict "$(r e_requests)" ">=" "$KEYS")"
  row "e  non-2xx answers" "$(r e_non2xx)" "0" "$(verdict "$(r e_non2xx)" "<=" 0)"
  row "e  key flood req/s" "$(r e_rps)" "" ""
  row "e  VmRSS before the flood, MiB" "$(r e_rss_before)" "" ""
  row "e  VmRSS right after, MiB" "$(r e_rss_peak)" "<= ${TARGET_KEYS_RSS_MIB} MiB" "$(verdict "$(r e_rss_peak)" "<=" "$TARGET_KEYS_RSS_MIB")"
  row "e  VmHWM (peak) right after, MiB" "$(r e_hwm)" "(<= ${TARGET_KEYS_RSS_MIB} MiB)" "$(verdict "$(r e_hwm)" "<=" "$TARGET_KEYS_RSS_MIB")"
  row "e  VmRSS ${SWEEP_WAIT}s later (swept), MiB" "$(r e_rss_swept)" "falls back" "$(r e_fallback)"
  row "f  requests with distinct keys" "$(r f_requests)" ">= $KEYS" "$(verdict "$(r f_requests)" ">=" "$KEYS")"
  row "f  non-2xx answers" "$(r f_non2xx)" "0" "$(verdict "$(r f_non2xx)" "<=" 0)"
  row "f  VmRSS before the flood, MiB" "$(r f_rss_before)" "" ""
  row "f  VmRSS, keys held, MiB" "$(r f_rss_peak)" "<= ${TARGET_KEYS_RSS_MIB} MiB" "$(verdict "$(r f_rss_peak)" "<=" "$TARGET_KEYS_RSS_MIB")"
  row "f  VmHWM (peak), MiB" "$(r f_hwm)" "(<= ${TARGET_KEYS_RSS_MIB} MiB)" "$(verdict "$(r f_hwm)" "<=" "$TARGET_KEYS_RSS_MIB")"
  row "f  VmRSS after the first sweep, MiB" "$(r f_rss_swept)" "falls back" "$(r f_fallback)"
  local f_twice
  # Idle as d measured it (after 2 s of rest); f's own "before" if d did
  # not run (read right after start-up, so it may still hold start-up's
  # Argon2 buffer).
  local idle=$(r d_rss)
  [ "$idle" != - ] || idle=$(r f_rss_before)
  f_twice=$(awk -v b="$idle" 'BEGIN { if (b != "-" && b > 0) printf "%.1f", 2 * b; else print "-" }')
  row "f  VmRSS after the sweep, within 2x idle" "$(r f_rss_swept)" "<= $f_twice MiB" "$(verdict "$(r f_rss_swept)" "<=" "$f_twice")"
  row "s  bare hello over TLS, req/s" "$(r s_bare_rps)" "(ceiling)" ""
  row "s  bare hello over TLS, CPU us/request" "$(r s_bare_cpu)" "" ""
  row "s  /api/data over TLS, req/s" "$(r s_rps)" "" ""
  row "s  /api/data over TLS, % of TLS bare" "$(r s_pct)" ">= ${TARGET_TLS_PCT}% of it" "$(verdict "$(r s_pct)" ">=" "$TARGET_TLS_PCT")"
  row "s  /api/data over TLS, p99 ms" "$(r s_p99)" "" ""
  row "s  /api/data over TLS, CPU us/request" "$(r s_cpu)" "" ""
  row "g  /profile 200, req/s" "$(r g_rps)" "" ""
  row "g  /profile, % of a" "$(r ga)" ">= ${TARGET_PROFILE_PCT}% of a" "$(verdict "$(r ga)" ">=" "$TARGET_PROFILE_PCT")"
  row "g  /profile, p99 ms" "$(r g_p99)" "<= ${TARGET_PROFILE_P99_MS} ms" "$(verdict "$(r g_p99)" "<=" "$TARGET_PROFILE_P99_MS")"
  row "g  server CPU per request, us" "$(r g_cpu)" "" ""
  row "g  non-2xx answers" "$(r g_non2xx)" "0" "$(verdict "$(r g_non2xx)" "<=" 0)"
  row "k  /profile on PostgreSQL + Redis, req/s" "$(r k_rps)" "" ""
  row "k  /profile on PostgreSQL + Redis, % of a" "$(r ka)" ">= ${TARGET_PROFILE_SCALE_PCT}% of a" "$(verdict "$(r ka)" ">=" "$TARGET_PROFILE_SCALE_PCT")"
  row "k  /profile, p99 ms" "$(r k_p99)" "" ""
  row "k  server CPU per request, us" "$(r k_cpu)" "" ""
  row "k  non-2xx answers" "$(r k_non2xx)" "0" "$(verdict "$(r k_non2xx)" "<=" 0)"
  row "k  database transactions during the run" "$(r k_xact)" "" ""
  row "k0 same, rate limiting off, req/s" "$(r k0_rps)" "" ""
  row "k0 same, rate limiting off, % of a" "$(r k0a)" ">= ${TARGET_PROFILE_SCALE_PCT}% of a" "$(verdict "$(r k0a)" ">=" "$TARGET_PROFILE_SCALE_PCT")"
  row "k0 server CPU per request, us" "$(r k0_cpu)" "" ""
  row "k0 database transactions during the run" "$(r k0_xact)" "" ""
  row "h  one Argon2id hash (OWASP), ms" "$(r h_hash_ms)" "" ""
  row "h  ideal logins/s (cores / hash)" "$(r h_ideal)" "" ""
  row "h  logins/s during the storm" "$(r h_logins)" "" ""
  row "h  logins, % of ideal" "$(r h_pct)" ">= ${TARGET_LOGIN_PCT}%" "$(verdict "$(r h_pct)" ">=" "$TARGET_LOGIN_PCT")"
  row "h  login non-2xx answers" "$(r h_login_non2xx)" "0" "$(verdict "$(r h_login_non2xx)" "<=" 0)"
  row "h  /profile p99 during the storm, ms" "$(r h_profile_p99)" "<= ${TARGET_STORM_P99_MS} ms" "$(verdict "$(r h_profile_p99)" "<=" "$TARGET_STORM_P99_MS")"
  row "h  /profile req/s during the storm" "$(r h_profile_rps)" "" ""
  row "l  one Argon2id hash, ms" "$(r l_hash_ms)" "" ""
  row "l  logins/s, the storm alone" "$(r l_logins)" "" ""
  row "l  logins alone, % of ideal" "$(r l_pct)" ">= ${TARGET_LOGIN_PCT}%" "$(verdict "$(r l_pct)" ">=" "$TARGET_LOGIN_PCT")"
  row "l  login non-2xx answers" "$(r l_non2xx)" "0" "$(verdict "$(r l_non2xx)" "<=" 0)"
  row "h  RSS before the storm, MiB" "$(r h_rss_idle)" "" ""
  row "h  peak RSS (VmHWM), MiB" "$(r h_rss_peak)" "" ""
  row "h  RSS 5 s after the storm, MiB" "$(r h_rss_after)" "" ""
  row "i  /api/data on Redis, req/s" "$(r i_rps)" "" ""
  row "i  /api/data on Redis, % of a" "$(r ia)" ">= ${TARGET_REDIS_PCT}% of a" "$(verdict "$(r ia)" ">=" "$TARGET_REDIS_PCT")"
  row "i  /api/data on Redis, p99 ms" "$(r i_p99)" "" ""
  row "i  server CPU per request, us" "$(r i_cpu)" "" ""
  row "i  non-2xx answers" "$(r i_non2xx)" "0" "$(verdict "$(r i_non2xx)" "<=" 0)"
  row "j  1 connection, local limiter p50/p99 ms" "$(r j_local_p50)/$(r j_local_p99)" "" ""
  row "j  1 connection, Redis limiter p50/p99 ms" "$(r j_redis_p50)/$(r j_redis_p99)" "" ""
  row "j  a Redis decision adds p50/p99 ms" "$(r j_extra_p50)/$(r j_extra_p99)" "" ""
  row "m  upstream direct, req/s" "$(r m_direct_rps)" "" ""
  row "m  gateway, anonymous route, req/s" "$(r m_anon_rps)" "" ""
  row "m  gateway, anonymous, % of direct" "$(r m_anon_pct)" "" ""
  row "m  gateway, authenticated route, req/s" "$(r m_auth_rps)" "" ""
  row "m  gateway, authenticated, % of direct" "$(r m_auth_pct)" "" ""
  row "m  server CPU per request anon/auth, us" "$(r m_anon_cpu)/$(r m_auth_cpu)" "" ""
  row "m  1 conn direct p50/p99 ms" "$(r m_direct_p50)/$(r m_direct_p99)" "" ""
  row "m  1 conn gateway anon p50/p99 ms" "$(r m_anon_p50)/$(r m_anon_p99)" "" ""
  row "m  1 conn gateway auth p50/p99 ms" "$(r m_auth_p50)/$(r m_auth_p99)" "" ""
  row "m  gateway adds p50, anon, ms" "$(r m_anon_add_p50)" "<= 1 ms" "$(verdict "$(r m_anon_add_p50)" "<=" 1)"
  row "m  gateway adds p50, auth, ms" "$(r m_auth_add_p50)" "<= 1 ms" "$(verdict "$(r m_auth_add_p50)" "<=" 1)"
  row "m  gateway adds p99 anon/auth, ms" "$(r m_anon_add_p99)/$(r m_auth_add_p99)" "" ""
  echo
  if [ -n "${RESULT[a_rps_all]:-}${RESULT[b_rps_all]:-}${RESULT[c_rps_all]:-}" ]; then
    echo "Each round (a b c run back to back; the ratios compare b and c with the a just before them):"
    echo "        req/s a: $(r a_rps_all) | b: $(r b_rps_all) | c: $(r c_rps_all)"
    echo "        b % of a: $(r ba_all) | c % of a: $(r ca_all)"
    echo "        p99 ms a: $(r a_p99_all) | b: $(r b_p99_all) | c: $(r c_p99_all)"
    echo "        server CPU us/request a: $(r a_cpu_all) | b: $(r b_cpu_all) | c: $(r c_cpu_all)"
    echo "        CPU % used by other processes a: $(r a_other_all) | b: $(r b_other_all) | c: $(r c_other_all)"
    echo "        non-2xx a: $(r a_non2xx_all) | b: $(r b_non2xx_all) | c: $(r c_non2xx_all) of $(r c_requests_all) (c: all)"
    echo "        VmRSS of b after its load, MiB: $(r b_rss_after_all)"
  fi
  echo "Other:  idle VmHWM $(r d_hwm) MiB;"
  echo "        e took $(r e_seconds)s, p99 $(r e_p99) ms; VmRSS each second after e: $(r e_rss_samples)MiB"
  echo "        f took $(r f_seconds)s ($(r f_rps) req/s), sweep interval ${F_SWEEP_INTERVAL}s $(r f_note)"
  if [ "${#NOISY[@]}" -gt 0 ]; then
    echo
    echo "WARNING: measured on a busy machine (figures unreliable): ${NOISY[*]}"
  fi
  if [ "${#ATTRIB_LINES[@]}" -gt 0 ]; then
    echo
    echo "Attribution (GET /api/data, limit lifted, parts switched off by settings):"
    echo "(medians of $ROUNDS round(s); % of the median a; the rounds' req/s at the end)"
    printf '| %-22s | %10s | %9s | %10s | %14s | %s\n' "variant" "req/s" "% of a" "CPU us/req" "response bytes" "rounds"
    printf '|%s|%s|%s|%s|%s|%s\n' "$(printf -- '-%.0s' {1..24})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..11})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..16})" "-------"
    printf '%s\n' "${ATTRIB_LINES[@]}"
  fi
  echo "wrk outputs and server logs: $RESULTS$([ -n "${RESULTS_DIR:-}" ] || echo ' (removed on exit; set RESULTS_DIR to keep)')"
}

# ---------------------------------------------------------------- main

main() {
  if ! command -v wrk >/dev/null && [ "$(id -u)" = 0 ]; then
    log "installing wrk (Debian package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  fi
  command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
  command -v curl >/dev/null || die "curl is not installed"
  local s
  for s in $SCENARIOS; do
    declare -F "scenario_$s" >/dev/null || die "unknown scenario '$s'"
  done
  build
  hold_lock
  # The throughput scenarios a, b, c run as a block, ROUNDS times, where the
  # first of them stands in SCENARIOS; the others run once, in order.
  local round t block_done=0
  for s in $SCENARIOS; do
    case $s in
      a|b|c)
        [ "$block_done" = 0 ] || continue
        block_done=1
        for round in $(seq "$ROUNDS"); do
          for t in $SCENARIOS; do
            case $t in a|b|c) ;; *) continue ;; esac
            log "---- scenario $t (round $round of $ROUNDS)"
            wait_quiet "$t"
            "scenario_$t"
          done
        done ;;
      *)
        log "---- scenario $s"
        wait_quiet "$s"
        "scenario_$s" ;;
    esac
  done
  summary
}

main "$@"
