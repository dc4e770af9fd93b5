#!/usr/bin/env bash
# start-saio.sh -- a real single-node OpenStack Swift on 127.0.0.1 for the test suite:
# the native API (tempauth v1) and the S3 API (Swift's s3api middleware) on ONE port.
#
# Usage:  start-saio.sh [--fresh] [BASE_DIR] [PROXY_PORT]
#           BASE_DIR    default /tmp/saio   (configs, rings, data, logs, pids)
#           PROXY_PORT  default 8080        (account/container/object servers use
#                                            PROXY_PORT+1, +2, +3: 4 consecutive ports)
#           --fresh     wipe stored objects/containers before starting
#
# Needs Debian's python3-swift (bookworm: 2.30.1) importable by /usr/bin/python3:
#   apt-get install -y --no-install-recommends python3-swift
# The servers run through a tiny launcher written under BASE_DIR (no init scripts,
# no systemd, rsync, memcached or syslog; root not needed).
#
# Idempotent: if this BASE_DIR's servers are up and healthy it prints the endpoints
# again; stale or partial instances (found by PID file, checked by command line)
# are stopped and restarted with the data kept -- which is how tests restart Swift
# after stopping it with stop-saio.sh.
#
# stdout: `export VAR=value` lines only (`eval "$(start-saio.sh ...)"` works); the
# same lines go to BASE_DIR/saio.env.  Progress and errors go to stderr.
# Env knobs: SAIO_PYTHON (default /usr/bin/python3), SAIO_START_TIMEOUT (s, default
# 60), SAIO_S3_REGION (s3api `location`, default us-east-1), SAIO_LOG_LEVEL (INFO).
set -euo pipefail

FRESH=0
POS=()
for a in "$@"; do
  case "$a" in
    --fresh) FRESH=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "start-saio: unknown option $a" >&2; exit 2 ;;
    *) POS+=("$a") ;;
  esac
done
BASE=${POS[0]:-/tmp/saio}
PORT=${POS[1]:-8080}
[[ "$PORT" =~ ^[0-9]+$ ]] && (( PORT >= 1024 && PORT <= 65532 )) \
  || { echo "start-saio: bad port '$PORT'" >&2; exit 2; }
[[ "$BASE" =~ [[:space:]] ]] && { echo "start-saio: BASE_DIR must not contain whitespace" >&2; exit 2; }
mkdir -p "$BASE"
BASE=$(cd "$BASE" && pwd -P)
A_PORT=$((PORT + 1)); C_PORT=$((PORT + 2)); O_PORT=$((PORT + 3))
PY=${SAIO_PYTHON:-/usr/bin/python3}
TIMEOUT=${SAIO_START_TIMEOUT:-60}
LOG_LEVEL=${SAIO_LOG_LEVEL:-INFO}
REGION=${SAIO_S3_REGION:-us-east-1}
SERVERS=(account container object proxy)
ETC=$BASE/etc RUN=$BASE/run LOG=$BASE/log DEVS=$BASE/srv BIN=$BASE/bin
T0=$(date +%s.%N)
SIG="port=$PORT region=$REGION log=$LOG_LEVEL py=$PY"

say() { echo "start-saio: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
# run the Swift interpreter without any venv/PYTHONPATH of the caller
spy() { env -u PYTHONPATH -u PYTHONHOME -u VIRTUAL_ENV "$PY" "$@"; }

# ---------------------------------------------------------------- swift check
spy -c 'import swift.common.middleware.s3api.s3api, swift.proxy.server' \
  || die "$PY cannot import swift (+s3api). Install: apt-get install -y --no-install-recommends python3-swift"

# ------------------------------------------------------------------- helpers
pid_of() { [[ -s "$RUN/$1.pid" ]] && cat "$RUN/$1.pid" || true; }
# a PID counts as ours only if it is alive AND its command line names our launcher
ours() {
  local pid=$1
  [[ -n "$pid" && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$BIN/saio_server.py $ETC/"
}
print_env() {
  cat <<EOF
export SAIO_BASE=$BASE
export SAIO_PIDS="$(for s in "${SERVERS[@]}"; do printf '%s ' "$(pid_of "$s")"; done | sed 's/ $//')"
export SWIFT_AUTH_URL=http://127.0.0.1:$PORT/auth/v1.0
export SWIFT_STORAGE_URL=http://127.0.0.1:$PORT/v1/AUTH_test
export SWIFT_USER=test:tester
export SWIFT_KEY=testing
export ST_AUTH=http://127.0.0.1:$PORT/auth/v1.0
export ST_USER=test:tester
export ST_KEY=testing
export SWIFT_ADMIN_USER=admin:admin
export SWIFT_ADMIN_KEY=admin
export S3_ENDPOINT_URL=http://127.0.0.1:$PORT
export S3_ACCESS_KEY_ID=test:tester
export S3_SECRET_ACCESS_KEY=testing
export S3_REGION=$REGION
EOF
}
finish_ok() {
  print_env > "$BASE/saio.env"
  local t1; t1=$(date +%s.%N)
  say "$1 in $(awk -v a="$T0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')s"
  say "  Swift: auth v1 http://127.0.0.1:$PORT/auth/v1.0 user test:tester key testing (admin:admin/admin, test2:tester2/testing2, test:tester3/testing3 non-admin)"
  say "  S3:    endpoint http://127.0.0.1:$PORT access test:tester secret testing region $REGION (path-style, SigV4 or V2)"
  say "  logs:  $LOG/*.log   env: $BASE/saio.env   stop: stop-saio.sh $BASE"
  print_env
}

# readiness probe: backend /healthcheck, proxy /healthcheck + /info (s3api, slo),
# tempauth login + HEAD account.  Exits 0 when ready, 3 if a server died, 4 on timeout.
probe() {  # probe TIMEOUT_SECONDS PID...
  local tmo=$1; shift
  spy - "$PORT" "$tmo" "$@" <<'PYEOF'
import sys, time, json, os, urllib.request, urllib.error
port, tmo, pids = int(sys.argv[1]), float(sys.argv[2]), [int(p) for p in sys.argv[3:]]
base = 'http://127.0.0.1:%d' % port
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never use http_proxy
def req(url, method='GET', headers=None):
    r = opener.open(urllib.request.Request(url, method=method, headers=headers or {}), timeout=2)
    return r.status, r.headers, r.read()
deadline, last = time.time() + tmo, 'not started'
while time.time() < deadline:
    for p in pids:
        try:  # a dead child of ours stays a zombie until we exit: check state
            dead = open('/proc/%d/stat' % p).read().rsplit(')', 1)[1].split()[0] in 'ZX'
        except OSError:
            dead = True
        if dead:
            print('server pid %d exited' % p, file=sys.stderr); sys.exit(3)
    try:
        for p in (port + 1, port + 2, port + 3, port):
            st, _, body = req('http://127.0.0.1:%d/healthcheck' % p)
            assert st == 200 and body == b'OK', (p, st, body)
        info = json.loads(req(base + '/info')[2])
        assert 's3api' in info and 'slo' in info, 'no s3api/slo in /info'
        st, h, _ = req(base + '/auth/v1.0', headers={'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing'})
        st, _, _ = req(h['X-Storage-Url'], 'HEAD', {'X-Auth-Token': h['X-Auth-Token']})
        assert st in (200, 204), st
        sys.exit(0)
    except SystemExit:
        raise
    except Exception as e:
        last = repr(e)
    time.sleep(0.1)
print('not ready after %ss: %s' % (tmo, last), file=sys.stderr); sys.exit(4)
PYEOF
}

stop_ours() {
  local s pid
  for s in "${SERVERS[@]}"; do
    pid=$(pid_of "$s")
    if ours "$pid"; then say "stopping stale $s (pid $pid)"; kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for s in "${SERVERS[@]}"; do
    pid=$(pid_of "$s")
    for _ in $(seq 50); do ours "$pid" || break; sleep 0.1; done
    if ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
    rm -f "$RUN/$s.pid"
  done
}

# ------------------------------------------------- already running? (idempotent)
mkdir -p "$ETC" "$RUN" "$LOG" "$DEVS/d1" "$BIN" "$BASE/cache"
exec 9> "$RUN/lock"                      # one start/stop at a time per BASE_DIR
flock -w 120 9 || die "could not lock $RUN/lock"
all_up=1; any_up=0; pids=()
for s in "${SERVERS[@]}"; do
  pid=$(pid_of "$s")
  if ours "$pid"; then any_up=1; pids+=("$pid"); else all_up=0; fi
done
if (( all_up )) && [[ "$(cat "$RUN/signature" 2>/dev/null)" == "$SIG" ]] && (( ! FRESH )) \
   && probe 5 "${pids[@]}" 2>/dev/null; then
  finish_ok "already running"
  exit 0
fi
(( any_up )) && stop_ours
rm -f "$RUN"/*.pid "$RUN/signature"
if (( FRESH )); then say "--fresh: wiping $DEVS/d1"; rm -rf "${DEVS:?}/d1"; mkdir -p "$DEVS/d1"; fi

# ---------------------------------------------- ports free? xattrs supported?
spy - "$DEVS/d1" "$PORT" "$A_PORT" "$C_PORT" "$O_PORT" <<'PYEOF' || exit 1
import os, sys, socket, errno
d = sys.argv[1]
for p in map(int, sys.argv[2:]):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # like Swift's own listen socket: TIME_WAIT leftovers must not count as busy
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(('127.0.0.1', p))
    except OSError as e:
        sys.exit('start-saio: ERROR: 127.0.0.1:%d is in use (%s); pick another PROXY_PORT' % (p, e))
    finally:
        s.close()
f = os.path.join(d, '.xattr-probe')
open(f, 'w').close()
try:
    os.setxattr(f, 'user.swift.metadata', b'x' * 254)
except OSError as e:
    sys.exit('start-saio: ERROR: %s does not support user xattrs (%s); use a BASE_DIR '
             'on ext4/xfs/btrfs (or tmpfs on Linux >= 6.6)' % (d, e))
finally:
    os.unlink(f)
PYEOF

# ------------------------------------------------------------ configuration
ME=$(id -un) || die "current uid has no user name (Swift's drop_privileges needs one)"
cat > "$ETC/swift.conf" <<EOF
# generated by start-saio.sh -- keep prefix/suffix stable or stored data is lost
[swift-hash]
swift_hash_path_prefix = saio-prefix
swift_hash_path_suffix = saio-suffix

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
EOF

common_default() {  # common_default PORT NAME
  cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $1
workers = 0
user = $ME
swift_dir = $ETC
devices = $DEVS
mount_check = false
disable_fallocate = true
fallocate_reserve = 0
recon_cache_path = $BASE/cache
log_name = $2
log_level = $LOG_LEVEL
# generous backend timeouts: a slow CI box must not turn into 503s or lost
# (async_pending) container updates -- no updater daemons run here
conn_timeout = 2
node_timeout = 10
EOF
}

{ common_default "$A_PORT" account-server; cat <<EOF

[pipeline:main]
pipeline = healthcheck account-server

[app:account-server]
use = egg:swift#account

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
} > "$ETC/account-server.conf"

{ common_default "$C_PORT" container-server; cat <<EOF

[pipeline:main]
pipeline = healthcheck container-server

[app:container-server]
use = egg:swift#container

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
} > "$ETC/container-server.conf"

{ common_default "$O_PORT" object-server; cat <<EOF

[pipeline:main]
pipeline = healthcheck object-server

[app:object-server]
use = egg:swift#object
# wait for the container listing update before answering the PUT
# (default 1 s; a late update becomes an async_pending nobody processes)
container_update_timeout = 10

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
} > "$ETC/object-server.conf"

# tempauth keeps its tokens in env['swift.cache']: without a cache object every
# request is a 500 "Memcache required"; with the stock memcache filter but no
# memcached, tokens are forgotten at once.  One proxy process (workers = 0) =>
# a dict in that process is a coherent cache.
CACHE_FILTER="paste.filter_factory = saio_cache:filter_factory"

{ common_default "$PORT" proxy-server; cat <<EOF

[pipeline:main]
# s3api must sit before tempauth; slo after s3api (multipart uploads);
# versioned_writes+symlink give S3 bucket versioning.
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
# one node only: never "error-limit" it (default: 60 s of 503s after one 507/timeout)
error_suppression_interval = 0

[filter:s3api]
use = egg:swift#s3api
# region checked in SigV4 credential scopes, returned by GET ?location and the
# only LocationConstraint CreateBucket accepts; clients must use it as region
location = $REGION
# path-style only (no storage_domain => no virtual-hosted buckets)
dns_compliant_bucket_names = true
s3_acl = false
allow_multipart_uploads = true
# default S3 minimum part size (5 MiB) for all but the last part
min_segment_size = 5242880

[filter:tempauth]
use = egg:swift#tempauth
reseller_prefix = AUTH
token_life = 86400
# user_<account>_<user> = <key> [groups...] [storage url]
# S3 access key = "<account>:<user>", S3 secret = <key>
user_admin_admin = admin .admin .reseller_admin http://127.0.0.1:$PORT/v1/AUTH_admin
user_test_tester = testing .admin http://127.0.0.1:$PORT/v1/AUTH_test
user_test2_tester2 = testing2 .admin http://127.0.0.1:$PORT/v1/AUTH_test2
user_test_tester3 = testing3 http://127.0.0.1:$PORT/v1/AUTH_test

[filter:cache]
$CACHE_FILTER

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true

[filter:symlink]
use = egg:swift#symlink
EOF
} > "$ETC/proxy-server.conf"

# in-process cache (MemcacheRing-compatible subset) for the single proxy process
cat > "$BIN/saio_cache.py" <<'EOF'
"""Dict-backed stand-in for swift.common.memcached.MemcacheRing (one process)."""
import json
import time as _time

MAX_KEYS = 100000


class DictCache(object):
    def __init__(self):
        self._d = {}

    @staticmethod
    def _exp(ttl):
        ttl = float(ttl or 0)
        if ttl <= 0:
            return None
        return ttl if ttl > 30 * 24 * 3600 else _time.time() + ttl

    def _live(self, key):
        item = self._d.get(key)
        if item is not None and item[1] is not None and item[1] <= _time.time():
            self._d.pop(key, None)
            return None
        return item

    def set(self, key, value, serialize=True, time=0, min_compress_len=0,
            raise_on_error=False):
        if len(self._d) >= MAX_KEYS:
            self._d.clear()
        self._d[key] = (json.dumps(value) if serialize else value,
                        self._exp(time), serialize)

    def get(self, key, raise_on_error=False):
        item = self._live(key)
        if item is None:
            return None
        return json.loads(item[0]) if item[2] else item[0]

    def incr(self, key, delta=1, time=0):
        item = self._live(key)
        val = max(int(item[0]) + int(delta), 0) if item else max(int(delta), 0)
        self._d[key] = (str(val), item[1] if item else self._exp(time), False)
        return val

    def decr(self, key, delta=1, time=0):
        return self.incr(key, -delta, time)

    def delete(self, key, server_key=None):
        self._d.pop(key, None)

    def set_multi(self, mapping, server_key, serialize=True, time=0,
                  min_compress_len=0):
        for k, v in mapping.items():
            self.set(k, v, serialize=serialize, time=time)

    def get_multi(self, keys, server_key):
        return [self.get(k) for k in keys]


def filter_factory(global_conf, **local_conf):
    cache = DictCache()

    def factory(app):
        def middleware(env, start_response):
            env['swift.cache'] = cache
            return app(env, start_response)
        return middleware
    return factory
EOF

# launcher: read swift.conf from $ETC (not /etc/swift), log to stderr only
cat > "$BIN/saio_server.py" <<'EOF'
"""saio_server.py CONF APP_SECTION SWIFT_DIR -- run one Swift WSGI server."""
import logging
import os
import sys

# don't keep a caller's pipes (CI log capture, $(...)) open for our lifetime
os.closerange(3, 1024)

conf_file, app_section, swift_dir = sys.argv[1:4]
from swift.common import utils  # noqa: E402
utils.set_swift_dir(swift_dir)          # hash prefix/suffix + policies from SWIFT_DIR
from swift.common import storage_policy  # noqa: E402
storage_policy.reload_storage_policies()


class _NoSyslog(logging.NullHandler):
    def __init__(self, *args, **kwargs):
        logging.NullHandler.__init__(self)


# no syslog daemon here: keep Swift from sending syslog datagrams anywhere;
# -v style console logging (stderr) goes to the per-server log file instead
for mod_name in ('swift.common.utils', 'swift.common.utils.logs'):
    mod = sys.modules.get(mod_name)
    if mod is None:
        try:
            __import__(mod_name)
            mod = sys.modules[mod_name]
        except ImportError:
            continue
    if hasattr(mod, 'ThreadSafeSysLogHandler'):
        mod.ThreadSafeSysLogHandler = _NoSyslog

from swift.common.wsgi import run_wsgi  # noqa: E402
sys.exit(run_wsgi(conf_file, app_section, verbose=True))
EOF

# ------------------------------------------------------------------- rings
spy - "$ETC" "$A_PORT" "$C_PORT" "$O_PORT" <<'PYEOF'
# same as: swift-ring-builder X.builder create 8 1 1; ... add r1z1-127.0.0.1:PORT/d1 1; ... rebalance
import os, sys
from swift.common.ring import RingBuilder
etc = sys.argv[1]
for name, port in zip(('account', 'container', 'object'), map(int, sys.argv[2:5])):
    b = RingBuilder(8, 1, 1)          # part_power=8, replicas=1, min_part_hours=1
    b.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port,
               'replication_ip': '127.0.0.1', 'replication_port': port,
               'device': 'd1', 'weight': 1.0, 'meta': ''})
    b.rebalance()
    b.save(os.path.join(etc, name + '.builder'))
    b.get_ring().save(os.path.join(etc, name + '.ring.gz'))
PYEOF

# ------------------------------------------------------------------- start
for s in "${SERVERS[@]}"; do
  # nohup + Swift's own setsid() detach the servers from the caller; stdio goes
  # to the log, fd 9 (our lock) is closed, the launcher closes any other fds
  nohup env -u PYTHONPATH -u PYTHONHOME -u VIRTUAL_ENV "$PY" \
    "$BIN/saio_server.py" "$ETC/$s-server.conf" "$s-server" "$ETC" \
    >> "$LOG/$s.log" 2>&1 < /dev/null 9>&- &
  echo $! > "$RUN/$s.pid"
done
echo "$SIG" > "$RUN/signature"
pids=(); for s in "${SERVERS[@]}"; do pids+=("$(pid_of "$s")"); done
say "started pids: ${pids[*]} (account container object proxy); waiting up to ${TIMEOUT}s"

if ! probe "$TIMEOUT" "${pids[@]}"; then
  for s in "${SERVERS[@]}"; do say "---- tail $LOG/$s.log"; tail -n 15 "$LOG/$s.log" >&2 || true; done
  stop_ours
  rm -f "$RUN/signature"
  die "Swift did not become ready"
fi
finish_ok "ready"
