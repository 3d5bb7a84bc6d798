# Shared by bench/hit/run and bench/herd/run (sourced): start sidecache,
# nginx proxy_cache and Varnish on free 127.0.0.1 ports < 32768 with the
# configs of bench/peers/, and stop them on exit. Needs $work, $top,
# $sidecache set, and `pids` an array. $peer_sed, if set, is one more sed
# expression applied to the nginx and Varnish configurations (bench/freshness
# shortens their TTL with it).

# A free port below 32768 (outside the kernel's ephemeral range).
free_port() {
  python3 - <<'PY'
import random, socket
while True:
    p = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); s.close(); print(p); break
    except OSError:
        s.close()
PY
}

wait_listening() {  # port: until it accepts, at most 15 s
  local deadline=$((SECONDS + 15))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "nothing listens on $1" >&2; return 1; }
    sleep 0.05
  done
}

stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}

# Each start_* sets $port (no command substitution: the server would
# inherit its pipe and keep it open).

start_sidecache() {  # threads upstream_port secret
  port=$(free_port)
  SIDECACHE_LISTEN="127.0.0.1:$port" SIDECACHE_THREADS="$1" LEGACY_URL="http://127.0.0.1:$2" \
    JWT_SECRET="$3" "$sidecache" --config "$top/bench/peers/sidecache.yaml" \
    >/dev/null 2>"$work/sidecache-$1-$port.log" &
  pids+=($!); sidecache_pid=$!
  wait_listening "$port"
}

start_nginx() {  # workers upstream_port
  port=$(free_port)
  local dir="$work/nginx-$1-$port"; mkdir -p "$dir/tmp" "$dir/cache"
  chmod 755 "$work" "$dir"  # nginx workers run as nobody
  sed -e "s|@WORKERS@|$1|g; s|@DIR@|$dir|g; s|@PORT@|$port|g; s|@UPSTREAM_PORT@|$2|g" \
    -e "${peer_sed:-}" "$top/bench/peers/nginx-cache.conf" > "$dir/nginx.conf"
  nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >/dev/null 2>&1 &
  pids+=($!)
  wait_listening "$port"
}

# Varnish has no worker-count knob like the others (a thread per connection):
# with 1 it is pinned to one CPU (taskset), with 2 it may use both.
start_varnish() {  # threads upstream_port
  port=$(free_port)
  local dir="$work/varnish-$1-$port"; mkdir -p "$dir"
  # Its child runs as the varnish user: it must reach the working directory.
  chmod 755 "$work" "$dir"
  sed -e "s|@UPSTREAM_PORT@|$2|g" -e "${peer_sed:-}" "$top/bench/peers/varnish.vcl" > "$dir/default.vcl"
  local pin=()
  [ "$1" = 1 ] && pin=(taskset -c 1)
  "${pin[@]}" varnishd -F -n "$dir/n" -a "127.0.0.1:$port" -f "$dir/default.vcl" -s malloc,256m \
    -p thread_pools="$1" -p thread_pool_min=200 -p thread_pool_max=1000 \
    >"$dir/varnish.log" 2>&1 &
  pids+=($!)
  wait_listening "$port" || { cat "$dir/varnish.log" >&2; exit 1; }
}

start_static_upstream() {  # a tiny nginx answering a 4 KiB JSON body to any path; sets $port
  port=$(free_port)
  local dir="$work/upstream-$port"; mkdir -p "$dir/tmp" "$dir/www"
  chmod 755 "$work" "$dir" "$dir/www"  # nginx workers run as nobody
  python3 - "$dir/www/body.json" <<'PY'
import json, sys
pad = 4096 - len(json.dumps({"success": True, "data": {"pad": ""}}))
open(sys.argv[1], "w").write(json.dumps({"success": True, "data": {"pad": "x" * pad}}))
PY
  cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  open_file_cache max=16;
  server { listen 127.0.0.1:$port; root $dir/www; default_type application/json;
    location / { rewrite ^ /body.json break; } }
}
CONF
  nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >/dev/null 2>&1 &
  pids+=($!)
  wait_listening "$port"
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print 0; else print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# The kernel's autogroup scheduling (kernel.sched_autogroup_enabled = 1, the
# Debian kernel's default) shares the CPU equally between sessions first, and
# pg_ctl starts PostgreSQL in a session of its own: with a bench saturating
# the cores from another session, all of PostgreSQL's processes share one
# session's slice, and were seen runnable but without CPU for 1-4 s at a time
# (bench/README.md "freshness"). A database on its own host or cgroup, as in
# production, has no such neighbour. autogroup_off turns it off for a run
# (root only; says so), autogroup_restore puts the old value back.
autogroup_file=/proc/sys/kernel/sched_autogroup_enabled
autogroup_was=""
autogroup_off() {
  [ -w "$autogroup_file" ] || return 0
  autogroup_was=$(cat "$autogroup_file")
  [ "$autogroup_was" != 0 ] || { autogroup_was=""; return 0; }
  if echo 0 2>/dev/null >"$autogroup_file"; then
    echo "== kernel.sched_autogroup_enabled 0 for this run (was $autogroup_was; --autogroup keep to leave it)" >&2
  else
    autogroup_was=""
  fi
}
autogroup_restore() {
  [ -z "$autogroup_was" ] || echo "$autogroup_was" 2>/dev/null >"$autogroup_file" || true
}
