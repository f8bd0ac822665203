#!/usr/bin/env bash
# API conformance: runs schemathesis (every check) against the spec the server serves.
#
# Starts ./target/debug/letschat on a free local port with a throw-away SQLite database,
# seeds two users, a contact (room 1) and a message so real ids exist, then fuzzes every
# operation authenticated as the first user. Deterministic (fixed seed) and bounded
# (--max-examples). Exits non-zero if schemathesis reports anything.
#
# Environment: SCHEMATHESIS (the schemathesis executable), LETSCHAT_BIN (the server binary),
# CONFORMANCE_MAX_EXAMPLES, CONFORMANCE_SEED, CONFORMANCE_DATABASE_URL (an empty database to use
# instead of a temporary SQLite file, e.g. a fresh PostgreSQL database), CONFORMANCE_KEEP (keep the
# temporary folder: server log, JUnit report), CONFORMANCE_WORKERS (default 1: one worker keeps the
# run the same from one time to the next; more make the stateful phase vary).
set -euo pipefail

cd "$(dirname "$0")/.."

SCHEMATHESIS=${SCHEMATHESIS:-schemathesis}
BIN=${LETSCHAT_BIN:-./target/debug/letschat}
MAX_EXAMPLES=${CONFORMANCE_MAX_EXAMPLES:-100}
SEED=${CONFORMANCE_SEED:-20240601}

if [[ ! -x "$BIN" ]]; then
    echo "conformance: $BIN not found; run 'cargo build -p letschat' first" >&2
    exit 2
fi
if ! command -v "$SCHEMATHESIS" >/dev/null 2>&1; then
    echo "conformance: '$SCHEMATHESIS' not found; 'make conformance' installs it into .venv" >&2
    exit 2
fi

tmp=$(mktemp -d)
server_pid=""
cleanup() {
    local rc=$?
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ $rc -ne 0 && -s "$tmp/server.log" ]]; then
        echo "conformance: last server log lines:" >&2
        tail -n 20 "$tmp/server.log" >&2 || true
    fi
    [[ -n "${CONFORMANCE_KEEP:-}" ]] && echo "conformance: kept $tmp" >&2 || rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free port below 32768 (outside the usual ephemeral range, so it stays free).
port=$(python3 - <<'EOF'
import random, socket
ports = list(range(20000, 32768))
random.shuffle(ports)
for p in ports:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
else:
    raise SystemExit("no free port")
EOF
)
base="http://127.0.0.1:$port"
db_url="${CONFORMANCE_DATABASE_URL:-sqlite://$tmp/conformance.db}"

LETSCHAT_BIND="127.0.0.1:$port" \
DATABASE_URL="$db_url" \
LETSCHAT_JWT_SECRET="conformance-secret-conformance-secret-0123456789" \
LETSCHAT_BCRYPT_COST=4 \
LETSCHAT_AUTH_RATE_PER_IP=1000000 \
LETSCHAT_FAILED_LOGINS_PER_HOUR=1000000 \
LETSCHAT_MAX_CHANGES_PER_SEC=1000000 \
LETSCHAT_STATIC_DIR="$tmp/no-static" \
LETSCHAT_UPLOAD_DIR="$tmp/uploads" \
RUST_LOG="${RUST_LOG:-warn}" \
    "$BIN" >"$tmp/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 300); do
    if curl -fsS "$base/api/health" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "conformance: the server exited during start-up" >&2
        exit 1
    fi
    sleep 0.1
done
curl -fsS "$base/api/health" >/dev/null

# POST JSON, print the response body; fail on any non-2xx.
post() {
    local path=$1 body=$2 token=${3:-}
    local auth=()
    [[ -n "$token" ]] && auth=(-H "Authorization: Bearer $token")
    curl -fsS -X POST "$base$path" -H 'Content-Type: application/json' ${auth[@]+"${auth[@]}"} -d "$body"
}

# One top-level field of the JSON document on stdin.
field() {
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# alice's password is the one in the spec's examples, so the example login succeeds.
token=$(post /api/auth/register \
    '{"username":"alice","password":"correct horse battery","display_name":"Alice"}' | field token)
post /api/auth/register \
    '{"username":"bob","password":"bob-password","display_name":"Bob"}' >/dev/null
room_id=$(post /api/contacts '{"username":"bob"}' "$token" | field room_id)
post "/api/rooms/$room_id/messages" \
    '{"client_msg_id":"conformance-1","body":"Hello, Bob"}' "$token" >/dev/null
# A token of its own for POST /api/auth/logout, so fuzzing it does not revoke the main one.
logout_token=$(post /api/auth/login \
    '{"username":"bob","password":"bob-password"}' | field token)

# A picture of alice's (a 1×1 PNG), so that its signed links are fuzzed too: schemathesis.toml
# gives every generated request of GET /api/files/... the real link (a made-up one is 403).
base64 -d >"$tmp/picture.png" <<<'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='
picture=$(curl -fsS -X POST "$base/api/uploads" -H "Authorization: Bearer $token" \
    -F "file=@$tmp/picture.png;filename=picture.png;type=image/png")
# `link_part url|thumbnail_url id|e|s`: a part of one of the picture's links.
link_part() {
    python3 -c '
import json, sys, urllib.parse
up = json.loads(sys.argv[1])
query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(up[sys.argv[2]]).query))
print(up["id"] if sys.argv[3] == "id" else query[sys.argv[3]])' "$picture" "$1" "$2"
}
CONFORMANCE_UPLOAD_ID=$(link_part url id)
CONFORMANCE_FILE_E=$(link_part url e)
CONFORMANCE_FILE_S=$(link_part url s)
CONFORMANCE_THUMBNAIL_E=$(link_part thumbnail_url e)
CONFORMANCE_THUMBNAIL_S=$(link_part thumbnail_url s)
export CONFORMANCE_UPLOAD_ID CONFORMANCE_FILE_E CONFORMANCE_FILE_S CONFORMANCE_THUMBNAIL_E \
    CONFORMANCE_THUMBNAIL_S

if [[ "$room_id" != 1 ]]; then
    echo "conformance: expected the first room to be 1, got $room_id" >&2
    exit 1
fi

# The administration API (in builds that have `letschat admin`) is fuzzed as an administrator,
# "root" (user 3), and only on a spare account, "carol" (user 4): schemathesis.toml pins its
# user_id to 4, so it cannot deactivate the caller or revoke the tokens above.
admin_token=none
if "$BIN" admin --help >/dev/null 2>&1; then
    DATABASE_URL="$db_url" LETSCHAT_BCRYPT_COST=4 LETSCHAT_ADMIN_PASSWORD=root-password \
        "$BIN" admin create --username root >/dev/null
    admin_token=$(post /api/auth/login '{"username":"root","password":"root-password"}' | field token)
    spare=$(post /api/auth/register '{"username":"carol","password":"carol-password"}' |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["user"]["id"])')
    if [[ "$spare" != 4 ]]; then
        echo "conformance: expected the spare account to be user 4, got $spare" >&2
        exit 1
    fi
fi

# The account's own password change and deletion, and ending sessions, are fuzzed as "dave", whose
# password is not the spec's example (so the example cannot change or delete it): the tokens of
# the run stay valid.
self_token=$(post /api/auth/register \
    '{"username":"dave","password":"dave-password"}' | field token)
# Spare sessions of dave's, for DELETE /api/sessions/{session_id} to end: their ids (each token's
# `sid` claim) go into the run's copy of the configuration.
spare_sessions=""
for _ in 1 2 3; do
    spare_token=$(post /api/auth/login '{"username":"dave","password":"dave-password"}' | field token)
    sid=$(python3 -c '
import base64, json, sys
payload = sys.argv[1].split(".")[1]
print(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"])' "$spare_token")
    spare_sessions="${spare_sessions:+$spare_sessions, }$sid"
done
sed "s/@SPARE_SESSIONS@/$spare_sessions/" scripts/schemathesis.toml >"$tmp/schemathesis.toml"

echo "conformance: server on $base (pid $server_pid), schemathesis $("$SCHEMATHESIS" --version | awk '{print $NF}')"

export CONFORMANCE_LOGOUT_TOKEN="$logout_token" CONFORMANCE_ADMIN_TOKEN="$admin_token" \
    CONFORMANCE_SELF_TOKEN="$self_token"
# Hypothesis keeps caches and constants in ./.hypothesis by default: use a fresh one per run.
export HYPOTHESIS_STORAGE_DIRECTORY="$tmp/hypothesis"
set +e
"$SCHEMATHESIS" --config-file "$tmp/schemathesis.toml" run "$base/api/openapi.json" \
    -H "Authorization: Bearer $token" \
    --seed "$SEED" \
    --max-examples "$MAX_EXAMPLES" \
    --workers "${CONFORMANCE_WORKERS:-1}" \
    --request-timeout 10 \
    --no-color \
    --report junit --report-junit-path "$tmp/junit.xml" \
    2>&1 | tee "$tmp/schemathesis.log"
rc=${PIPESTATUS[0]}
set -e

if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "conformance: the server died during the run" >&2
    exit 1
fi
if [[ $rc -ne 0 ]]; then
    echo "conformance: FAILED (schemathesis exit code $rc)" >&2
    exit "$rc"
fi
# Had the fuzzer revoked the caller's token, every authenticated answer would have been a 401,
# which the checks accept: make sure the run really was authenticated to the end.
for t in "$token" ${admin_token#none}; do
    if ! curl -fsS "$base/api/me" -H "Authorization: Bearer $t" >/dev/null; then
        echo "conformance: FAILED: a token of the run stopped working during it" >&2
        exit 1
    fi
done
summary=$(python3 - "$tmp/junit.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
cases = list(ET.parse(sys.argv[1]).getroot().iter("testcase"))
ok = lambda c: all(c.find(tag) is None for tag in ("failure", "error", "skipped"))
ops = [c for c in cases if c.get("name") != "Stateful tests"]
stateful = [c for c in cases if c.get("name") == "Stateful tests"]
line = f"{sum(map(ok, ops))} of {len(ops)} operations passed"
if stateful:
    line += ", stateful scenarios " + ("passed" if all(map(ok, stateful)) else "FAILED")
print(line)
EOF
)
echo "conformance: $summary"
