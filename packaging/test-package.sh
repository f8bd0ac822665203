#!/usr/bin/env bash
# Checks a built Debian package of Let's Chat (`make package-test` builds it first):
#   1. its control data: name, dependencies, the conffile, the maintainer scripts with the
#      systemd snippets;
#   2. its files and their modes: the stripped server, the web client where the server looks for
#      it, the unit, the settings file (0600) that lists every setting of `letschat --help`;
#   3. the unit, with `systemd-analyze verify` (skipped, saying so, where it cannot run);
#   4. the secret generation of the postinst (packaging/ensure-secret), on temporary files;
#   5. the packaged server, unpacked into a throwaway root, started on a temporary data folder
#      and a free port with the packaged settings: /api/health answers and the packaged web
#      client is served; `letschat-admin` works on the same settings.
# Usage: packaging/test-package.sh target/debian/letschat_<version>_<arch>.deb
set -euo pipefail

deb=${1:?usage: $0 path/to/letschat.deb}
deb=$(realpath "$deb")
work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

failures=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

echo "== package $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"

# 1. Control data.
info=$(dpkg-deb -I "$deb")
field() { dpkg-deb -f "$deb" "$1"; }
check "package name is letschat" test "$(field Package)" = letschat
check "depends on libpq5 (the server links libpq)" grep -q 'libpq5' <<<"$(field Depends)"
check "depends on adduser (the postinst creates the letschat user)" grep -q 'adduser' <<<"$(field Depends)"
mkdir "$work/control"
dpkg-deb -e "$deb" "$work/control"
check "the settings file is the only conffile" test "$(cat "$work/control/conffiles" 2>/dev/null)" = /etc/letschat/letschat.env
check "postinst creates the user and the secret" grep -q 'ensure-secret' "$work/control/postinst"
check "postinst enables and starts the unit" grep -q 'deb-systemd-helper enable letschat.service' "$work/control/postinst"
check "postrm cleans up the unit on purge" grep -q 'deb-systemd-helper purge letschat.service' "$work/control/postrm"
check "prerm stops the unit on removal" grep -q 'letschat.service' "$work/control/prerm"
for script in postinst postrm prerm; do
    check "$script is valid shell" sh -n "$work/control/$script"
done
grep -E '^ (Package|Version|Architecture|Installed-Size|Depends):' <<<"$info" | sed 's/^/     /'

# 2. Files.
contents=$(dpkg-deb -c "$deb")
has() { # has MODE PATH
    grep -Eq "^$1 (root/root|0/0) +[0-9]+ [0-9-]+ [0-9:]+ \.$2\$" <<<"$contents"
}
check "/usr/bin/letschat, 0755" has -rwxr-xr-x /usr/bin/letschat
check "/usr/share/letschat/web/index.html" has -rw-r--r-- /usr/share/letschat/web/index.html
check "the web client's hashed assets, precompressed" \
    grep -Eq '\./usr/share/letschat/web/assets/index-[^/]+\.js\.br$' <<<"$contents"
check "/usr/lib/systemd/system/letschat.service" has -rw-r--r-- /usr/lib/systemd/system/letschat.service
check "/etc/letschat/letschat.env, 0600" has -rw------- /etc/letschat/letschat.env
check "/usr/lib/letschat/ensure-secret, 0755" has -rwxr-xr-x /usr/lib/letschat/ensure-secret
check "/usr/sbin/letschat-admin, 0755" has -rwxr-xr-x /usr/sbin/letschat-admin
check "/usr/share/doc/letschat/deploy.md" has -rw-r--r-- /usr/share/doc/letschat/deploy.md

root="$work/root"
dpkg-deb -x "$deb" "$root"
bin="$root/usr/bin/letschat"
check "the server binary is stripped (no debug information or symbol table)" \
    bash -c "! readelf -S -W '$bin' | grep -Eq '\.(debug_(info|line|str|ranges)|symtab) '"
echo "     binary: $(du -k "$bin" | cut -f1) KiB"

env_file="$root/etc/letschat/letschat.env"
help=$("$bin" --help)
missing=""
for var in $(grep -oE '\[env: [A-Z_]+' <<<"$help" | cut -d' ' -f2); do
    grep -Eq "^#?$var=" "$env_file" || missing="$missing $var"
done
if [ -z "$missing" ]; then ok "the settings file lists every setting of letschat --help"; else fail "the settings file lacks:$missing"; fi
check "the settings file binds to loopback" grep -qx 'LETSCHAT_BIND=127.0.0.1:8080' "$env_file"
check "the settings file holds no secret" bash -c "! grep -Eq '^LETSCHAT_JWT_SECRET=' '$env_file'"
unit="$root/usr/lib/systemd/system/letschat.service"
for directive in 'User=letschat' 'StateDirectory=letschat' 'Environment=LETSCHAT_DATA_DIR=/var/lib/letschat' \
    'EnvironmentFile=-/etc/letschat/secret.env' 'EnvironmentFile=/etc/letschat/letschat.env' \
    'ExecStart=/usr/bin/letschat' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' \
    'PrivateTmp=yes' 'PrivateDevices=yes' 'LimitNOFILE=1048576' 'Restart=on-failure' \
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX'; do
    check "unit: $directive" grep -qx "$directive" "$unit"
done

# 3. systemd-analyze verify: every directive known and valid (it warns about the others) and the
# command executable. A copy whose ExecStart names the unpacked binary, since /usr/bin/letschat
# is not installed here.
if ! command -v systemd-analyze >/dev/null; then
    echo "skip systemd-analyze verify: systemd-analyze is not installed"
else
    mkdir "$work/unit"
    sed "s#^ExecStart=/usr/bin/letschat#ExecStart=$bin#" "$unit" >"$work/unit/letschat.service"
    if out=$(systemd-analyze verify "$work/unit/letschat.service" 2>&1) && [ -z "$out" ]; then
        ok "systemd-analyze verify: no warnings"
    elif grep -qiE 'Failed to (initialize|set ?up|create) manager|System has not been booted|Operation not permitted' <<<"$out"; then
        echo "skip systemd-analyze verify: it cannot run here: $(head -n 1 <<<"$out")"
    else
        fail "systemd-analyze verify:"
        echo "$out" | sed 's/^/     /'
    fi
fi

# 4. The secret generation (postinst), on temporary paths.
ensure="$root/usr/lib/letschat/ensure-secret"
mkdir -p "$work/s1/data" "$work/s2/data" "$work/s3/data"
touch "$work/s1/letschat.env"
"$ensure" "$work/s1/secret.env" "$work/s1/letschat.env" "$work/s1/data" >/dev/null
check "a secret is generated when there is none" grep -Eqx 'LETSCHAT_JWT_SECRET=[0-9a-f]{128}' "$work/s1/secret.env"
check "the secret file is 0600" test "$(stat -c %a "$work/s1/secret.env")" = 600
first=$(cat "$work/s1/secret.env")
"$ensure" "$work/s1/secret.env" "$work/s1/letschat.env" "$work/s1/data" >/dev/null
check "an existing secret is kept (a reinstall or upgrade signs nobody out)" test "$(cat "$work/s1/secret.env")" = "$first"
echo "LETSCHAT_JWT_SECRET=$(printf 'x%.0s' {1..40})" >"$work/s2/letschat.env"
"$ensure" "$work/s2/secret.env" "$work/s2/letschat.env" "$work/s2/data" >/dev/null
check "no secret is generated when the settings set one" test ! -e "$work/s2/secret.env"
touch "$work/s3/letschat.env"
echo abc >"$work/s3/data/jwt_secret"
"$ensure" "$work/s3/secret.env" "$work/s3/letschat.env" "$work/s3/data" >/dev/null
check "no secret is generated when the server already made its own" test ! -e "$work/s3/secret.env"

# 5. The packaged server, from the throwaway root, with the packaged settings.
data="$work/data"
settings="$work/letschat.env"
{
    cat "$env_file"
    echo "LETSCHAT_DATA_DIR=$data"
    echo "LETSCHAT_BIND=127.0.0.1:0"
    echo "LETSCHAT_BCRYPT_COST=4"
} >"$settings"
log="$work/server.log"
(
    set -a
    # The unit's order: the generated secret, then the settings.
    . "$work/s1/secret.env"
    . "$settings"
    set +a
    cd "$work"
    exec env -u LETSCHAT_STATIC_DIR "$bin" >"$log" 2>&1
) &
server_pid=$!
port=
for _ in $(seq 1 100); do
    port=$(grep -oE 'listening.*port=[0-9]+|port=[0-9]+.*listening' "$log" 2>/dev/null | grep -oE 'port=[0-9]+' | head -n 1 | cut -d= -f2 || true)
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.2
done
if [ -z "$port" ]; then
    fail "the packaged server started"
    sed 's/^/     /' "$log"
else
    ok "the packaged server started on port $port"
    base="http://127.0.0.1:$port"
    health=$(curl -fsS "$base/api/health" || true)
    check "/api/health answers ok" grep -q '"status":"ok"' <<<"$health"
    curl -fsS "$base/" -o "$work/index.html" || true
    check "/ serves the packaged web client's index.html" cmp -s "$work/index.html" "$root/usr/share/letschat/web/index.html"
    check "the log names the packaged web client folder" grep -q "$root/usr/share/letschat/web" "$log"
    check "the server used the generated secret (none written to the data folder)" test ! -e "$data/jwt_secret"
    check "the data folder is 0700" test "$(stat -c %a "$data")" = 700
    check "the database is 0600" test "$(stat -c %a "$data/letschat.db")" = 600
    check "no warning at start" bash -c "! grep -q ' WARN ' '$log'"

    # letschat-admin reads the same settings file.
    admin=(env LETSCHAT_ENV_FILE="$settings" LETSCHAT_USER="$(id -un)" LETSCHAT_ADMIN_PASSWORD='Packaged-admin-7f3q' "$root/usr/sbin/letschat-admin")
    if "${admin[@]}" create --username packaged_root >"$work/admin.log" 2>&1 \
        && "${admin[@]}" list >>"$work/admin.log" 2>&1 && grep -q packaged_root "$work/admin.log"; then
        ok "letschat-admin creates and lists an administrator in the service's database"
    else
        fail "letschat-admin:"
        sed 's/^/     /' "$work/admin.log"
    fi
    login=$(curl -sS -H 'Content-Type: application/json' \
        -d '{"username":"packaged_root","password":"Packaged-admin-7f3q"}' "$base/api/auth/login" || true)
    check "the administrator signs in to the packaged server" grep -q '"token"' <<<"$login"
fi

if [ "$failures" -ne 0 ]; then
    echo "== $failures check(s) failed"
    exit 1
fi
echo "== the package passed every check"
