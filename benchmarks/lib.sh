# lib.sh - what the benchmark scripts share. Source it: `. "$here/lib.sh"`.

# start_nginx_backend DIR PORT: an nginx HTTP backend pinned to CPU 0 on 127.0.0.1:PORT, answering every request
# with 200 and a 100-byte body, keep-alive without a request limit; its config, pid and logs live in DIR. Sets
# NGINX_PID (the caller kills it; the caller waits for PORT to listen). Needs nginx.
start_nginx_backend() {
  local dir=$1 port=$2 body
  body=$(head -c 100 /dev/zero | tr '\0' a)
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  server { listen 127.0.0.1:$port backlog=4096; location / { default_type text/plain; return 200 "$body"; } }
}
CONF
  taskset -c 0 nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/stdout.log" 2>&1 &
  NGINX_PID=$!
}
