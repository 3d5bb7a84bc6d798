vcl 4.1;
# Varnish caching per user: the built-in vcl_recv passes any request with
# Authorization, so return hash here and put the header in the hash.
# bench/*/run substitutes @UPSTREAM_PORT@.

backend legacy {
  .host = "127.0.0.1";
  .port = "@UPSTREAM_PORT@";
}

sub vcl_recv {
  if (req.method == "GET" || req.method == "HEAD") {
    return (hash);
  }
  return (pass);
}

sub vcl_hash {
  hash_data(req.url);
  hash_data(req.http.Authorization);
  return (lookup);
}

sub vcl_backend_response {
  if (beresp.status == 200) {
    set beresp.ttl = 10m;
    set beresp.grace = 0s;
  } else {
    set beresp.uncacheable = true;
    set beresp.ttl = 0s;
  }
  return (deliver);
}

sub vcl_deliver {
  if (obj.hits > 0) { set resp.http.X-Cache = "HIT"; } else { set resp.http.X-Cache = "MISS"; }
}
