#pragma once
// sidecache's whole configuration as plain structs. conf/loader.cpp fills them
// from one YAML file; nothing outside conf/ sees YAML. Every field's default
// here is the default documented in conf/sidecache.example.yaml.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sidecache::conf {

using duration = std::chrono::milliseconds;

// "host:port"; port 0 lets the kernel choose.
struct endpoint {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
};

// An absolute http:// or https:// base URL, split.
struct base_url {
    std::string scheme = "http";  // "http" or "https"
    std::string host;
    std::uint16_t port = 80;
    std::string path;  // without trailing '/', may be empty
    std::string text;  // as written, for messages
};

struct server_config {
    endpoint listen{"127.0.0.1", 8080};
    unsigned threads = 0;                           // 0: one per core
    std::size_t max_header_bytes = 16 * 1024;       // larger header block: 431
    std::size_t max_body_bytes = 64 * 1024 * 1024;  // larger request body: 413
    duration header_timeout{10'000};                // request head not received in time: 408
    duration idle_timeout{60'000};                  // keep-alive connection idle: closed
    duration body_timeout{60'000};                  // a request or response body stalls: closed
    duration drain_timeout{10'000};                 // SIGTERM: in-flight requests get this long
    duration drain_idle_grace{1'000};               // SIGTERM: idle keep-alive connections kept this long (within drain_timeout)
    std::size_t max_pipelined = 16;                 // requests read ahead on one connection
    std::size_t max_connections = 10'000;
};

struct admin_config {
    endpoint listen{"127.0.0.1", 9901};
    bool enabled = true;
    // Non-empty: every admin request but /live and /healthz needs
    // "Authorization: Bearer <token>", else 401.
    std::string token;
};

struct upstream_config {
    base_url url;  // the legacy backend
    std::size_t max_connections = 256;
    std::size_t max_idle_connections = 64;
    duration connect_timeout{2'000};
    duration response_timeout{30'000};  // until the response head arrives: 504
    duration idle_timeout{60'000};      // pooled idle connection closed after
    duration health_check_interval{5'000};  // a TCP connect for /readyz this often; 0: never
};

struct auth_config {
    std::string jwt_secret;  // empty: no request is verified, so nothing is cached
    duration leeway{0};      // clock skew tolerated on nbf (never on exp: the legacy has none)
    std::size_t token_cache_entries = 10'000;
};

// How one cached route is filled.
enum class fill_kind {
    upstream,  // forward to the legacy backend and keep its 200 answer
    postgres,  // compute from PostgreSQL with db/queries/<query>.sql
};

struct route_config {
    std::string name;                       // "overview", used in tags and stats
    std::string path;                       // exact path, "/api/dashboard/overview"
    std::vector<std::string> query_params;  // the query parameters in the key
    duration ttl{30'000};
    duration stale_while_revalidate{30'000};
    duration stale_if_error{300'000};
    bool utc_day_bound = true;  // not fresh past the UTC midnight after computation
    fill_kind fill = fill_kind::upstream;
    std::string query;                // postgres fill: the SQL file's name in db/queries/
    bool enrich_agents = false;       // complete the answer with the external agent API
    std::size_t max_waiters = 1'000;  // coalesced waiters per key
    duration wait_timeout{5'000};     // a waiter gives up: stale, else 503
    duration fill_timeout{30'000};  // a fill's own deadline (the longer of it and wait_timeout)
    duration failure_backoff{1'000};  // after a key's fill fails, its next fill waits; 0: never
    duration failure_backoff_max{30'000};  // doubling per consecutive failure, up to this
    duration degraded_ttl{10'000};    // ttl of an answer with degraded parts
};

// Right after each UTC midnight, the entries of utc_day_bound routes read
// recently are refilled in the background (docs/freshness.md, "UTC midnight").
struct midnight_refill_config {
    bool enabled = true;
    duration recent{600'000};        // read within this long before midnight
    std::size_t max_entries = 10'000;  // the most recently read first
    std::size_t concurrency = 8;     // refills at once
    duration spread{30'000};         // their starts spread over this window after midnight
};

// At start and after a flush (the listener's reconnect, NOTIFY `all`, a
// purge of everything), the answers of the most recently active users
// (PostgreSQL: a call within `lookback`, an active user) are filled in the
// background, so the first requests after a deploy are hits
// (docs/operations.md, "Warm-up").
struct warmup_config {
    bool enabled = false;
    std::size_t users = 1'000;      // the most recent callers first
    duration lookback{86'400'000};  // a call within this long makes a user recently active
    std::size_t concurrency = 4;    // fills at once
    duration ready_timeout{0};      // /readyz waits for the start's warm-up up to this long; 0: not
};

struct cache_config {
    bool enabled = true;
    std::size_t max_bytes = 256 * 1024 * 1024;
    unsigned shards = 16;
    std::vector<route_config> routes;
    midnight_refill_config midnight_refill;
    warmup_config warmup;
};

struct database_config {
    std::string url;  // empty: no PostgreSQL; postgres fills use the upstream fill
    std::size_t pool_size = 4;
    duration connect_timeout{3'000};
    duration query_timeout{2'000};
    duration reconnect_backoff_max{10'000};
    // The pool lost every connection (PostgreSQL restarting): fills wait for
    // one until this long after the loss, within their deadline, then fall back.
    duration reconnect_wait{2'000};
    bool migrate_on_start = false;
    duration refresh_interval{300'000};  // materialized views; 0: never on a schedule
    std::uint64_t refresh_marked_users = 100;  // marked users that make the refresher leader refresh
    std::string queries_dir = "db/queries";
    std::string migrations_dir = "db/migrations";
    std::string notify_channel = "sidecache_invalidate";
    bool listen_notify = true;              // LISTEN on notify_channel and invalidate what it names
    duration listen_ping_interval{30'000};  // a quiet listener checks its connection this often
    // The listener NOTIFYs its own channel this often and must hear itself back
    // within two intervals, else no entry is fresh (docs/freshness.md); 0: off.
    duration heartbeat_interval{2'000};
    // Unheard this long, the connection is taken for dead: replaced, and the
    // cache flushed. A channel merely late (a loaded server) keeps its
    // connection, so no notification is lost and nothing needs flushing.
    duration heartbeat_timeout{10'000};
};

struct retry_profile {
    unsigned attempts = 3;
    duration base{50};
    duration max{200};
    double multiplier = 2.0;
};

struct breaker_config {
    unsigned consecutive_failures = 5;
    double failure_rate = 0.5;  // over window, with at least min_requests
    duration window{10'000};
    unsigned min_requests = 20;
    // Short: a trial is one GET, and how long the API's return goes unseen
    // (degraded answers served) is up to this (bench/README.md "faults").
    duration cool_down{500};
};

struct external_config {
    base_url url;  // https://api.elevenlabs.io
    std::string api_key;
    bool verify_tls = true;
    std::size_t max_connections = 64;
    std::size_t concurrency = 64;  // parallel fetches per fill (≥ agents per user: one round trip)
    duration try_timeout{400};     // one attempt
    duration deadline{800};        // the whole enrichment of one answer
    retry_profile foreground{3, duration{50}, duration{200}, 2.0};
    retry_profile background{3, duration{1'000}, duration{4'000}, 2.0};
    breaker_config breaker;
    duration config_ttl{600'000};   // per-agent configuration cache
    duration max_stale{3'600'000};  // last good configuration served as "stale"
    std::size_t config_cache_entries = 100'000;  // agents remembered (bounded memory)
};

// A redis:// URL, split (conf::parse_redis_url).
struct redis_url {
    std::string host;
    std::uint16_t port = 6379;
    std::string user, password;  // empty: no AUTH
    unsigned db = 0;
    std::string text;  // as written (conf::redact_url before showing it)
};

// The second-level cache on Redis, shared by a fleet (docs/l2.md). Off
// while url is empty.
struct l2_config {
    bool enabled = false;  // url non-empty
    redis_url url;
    std::size_t connections = 2;  // per io thread
    duration op_timeout{20};      // one Redis command: past it, served as without L2
    duration connect_timeout{200};
    std::string key_prefix = "sidecache:";
    std::size_t max_value_bytes = 1024 * 1024;  // larger answers are not stored in L2
    unsigned breaker_failures = 5;              // consecutive failures that open the breaker
    duration breaker_open_for{1'000};           // no Redis call for this long, then one try
    // An L2 miss takes <prefix>lock:... for fill_lock_ttl; another replica
    // missing the key meanwhile polls L2 for its value up to fill_lock_wait,
    // then fills on its own. 0: no lock.
    duration fill_lock_wait{150};
    duration fill_lock_ttl{1'000};
};

struct log_config {
    std::string level = "info";  // debug, info, warn, error
    bool access_log = false;
    // HMAC-SHA256 key of the access log's user field; "" (the default): a
    // random key per process. Set, at least 16 characters.
    std::string user_hash_key;
};

struct config {
    std::string source_file;  // the YAML file it came from
    server_config server;
    admin_config admin;
    upstream_config upstream;
    auth_config auth;
    cache_config cache;
    database_config database;
    external_config external;
    l2_config l2;
    log_config log;
};

}  // namespace sidecache::conf
