#pragma once
// The access log (log.access_log): one JSON object per request on stdout,
//   {"time":...,"method":"GET","path":"/api/agents?limit=&page=","status":200,"bytes":5120,
//    "duration_ms":0.412,"cache":"hit","user":"3f9a0c...","fill_ms":12.5}
// Recorded on the request's io thread into a buffer of that thread (no
// write there); a background thread writes the buffers out every
// flush_interval, sooner when one reaches flush_bytes, and at destruction.
// A buffer already at max_bytes drops the line and counts it: a blocked
// stdout never blocks a request.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sidecache::log {

// One request as the access log sees it.
struct access_entry {
    std::chrono::system_clock::time_point time;  // when the request's head was read
    std::string_view method;
    std::string_view target;  // as sent; the query's values are dropped when recorded
    unsigned status = 0;      // 0: no answer (connection lost)
    std::uint64_t bytes = 0;  // response bytes written (body only for relayed answers)
    std::chrono::steady_clock::duration duration{};
    std::string_view cache;    // "hit", "stale", "miss", ... ("pass": forwarded unchanged)
    std::string_view user_id;  // verified user, "" if none; only its keyed hash is written
    // Time spent waiting for the legacy backend (a forwarded request) or for
    // the cache fill (a miss); unset for a hit.
    std::optional<std::chrono::steady_clock::duration> upstream, fill;
};

struct access_log_options {
    int fd = 1;                                   // stdout
    std::string user_hash_key;                    // HMAC-SHA256 key; "": a random one per process
    std::chrono::milliseconds flush_interval{1000};
    std::size_t flush_bytes = 64 * 1024;          // a buffer this full wakes the writer
    std::size_t max_bytes = 1024 * 1024;          // a buffer this full drops lines
};

class access_log {
public:
    explicit access_log(access_log_options options);
    ~access_log();  // writes what is buffered
    access_log(const access_log&) = delete;
    access_log& operator=(const access_log&) = delete;

    // Formats `e` into the calling thread's buffer. Never blocks on output.
    void record(const access_entry& e) noexcept;

    // Writes every buffer out now (drain, tests).
    void flush();

    std::uint64_t recorded() const { return recorded_.load(std::memory_order_relaxed); }
    std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

    // The user field for `user_id`: hex of the first 8 bytes of
    // HMAC-SHA256(key, user_id).
    std::string user_hash(std::string_view user_id) const;

private:
    struct buffer;
    buffer& local_buffer();
    void run_writer();

    access_log_options options_;
    const std::uint64_t instance_;  // tells this log apart in each thread's cached buffer pointer
    std::mutex buffers_mutex_;
    std::vector<std::unique_ptr<buffer>> buffers_;
    std::atomic<std::uint64_t> recorded_{0}, dropped_{0};

    std::mutex writer_mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    bool urgent_ = false;
    std::mutex output_mutex_;  // one writer of the output at a time (the thread, flush())
    std::thread writer_;
};

// `target` with the query's values dropped, names kept:
// "/a?user=x&limit=5" -> "/a?user=&limit=". No query: as it is.
std::string without_query_values(std::string_view target);

}  // namespace sidecache::log
