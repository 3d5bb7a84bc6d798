#pragma once
// The one model of sidecache's counters: each module declares its counters,
// gauges and histograms here once, at start-up, and gets handles back; the
// admin listener renders the same registry as JSON (/stats) and in the
// Prometheus text format 0.0.4 (/metrics).
//
// The hot path only touches handles: a counter is a relaxed atomic add on a
// cache line of the calling thread's shard (no lock, no allocation, no
// look-up by name or label). Declaring and rendering take a mutex.
//
// A series is either owned (a handle the module increments) or read (a
// function the registry calls when rendering, for a figure a module already
// keeps, such as the store's entries or the PostgreSQL pool's state).
// A series may also appear in /stats under a path of object keys
// ({"cache", "routes", "overview", "hits"}); JSON-only fields (strings such
// as a reason) are declared with add_json.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sidecache::metrics {

// Writers on different io threads add to different cache lines: one shard
// per thread (by a thread-local index), summed when rendered.
inline constexpr std::size_t shard_count = 8;
std::size_t this_thread_shard() noexcept;

struct alignas(64) counter_shard {
    std::atomic<std::uint64_t> value{0};
};

class counter {
public:
    counter() = default;
    void inc(std::uint64_t n = 1) const noexcept {
        cells_[this_thread_shard()].value.fetch_add(n, std::memory_order_relaxed);
    }
    std::uint64_t value() const noexcept;
    explicit operator bool() const noexcept { return cells_ != nullptr; }

private:
    friend class registry;
    explicit counter(counter_shard* cells) : cells_(cells) {}
    counter_shard* cells_ = nullptr;
};

class gauge {
public:
    gauge() = default;
    void set(std::int64_t v) const noexcept { cell_->store(v, std::memory_order_relaxed); }
    void add(std::int64_t d) const noexcept { cell_->fetch_add(d, std::memory_order_relaxed); }
    std::int64_t value() const noexcept { return cell_->load(std::memory_order_relaxed); }

private:
    friend class registry;
    explicit gauge(std::atomic<std::int64_t>* cell) : cell_(cell) {}
    std::atomic<std::int64_t>* cell_ = nullptr;
};

// Cumulative buckets by upper bound (seconds); the sum kept in nanoseconds.
inline constexpr std::size_t max_buckets = 16;
struct alignas(64) histogram_shard {
    std::array<std::atomic<std::uint64_t>, max_buckets + 1> counts{};  // the last one: +Inf
    std::atomic<std::uint64_t> sum_ns{0};
};
struct histogram_cells {
    std::vector<double> bounds;  // ascending, at most max_buckets
    std::array<histogram_shard, shard_count> shards;
};

class histogram {
public:
    histogram() = default;
    void observe(double seconds) const noexcept;
    explicit operator bool() const noexcept { return cells_ != nullptr; }

private:
    friend class registry;
    explicit histogram(histogram_cells* cells) : cells_(cells) {}
    histogram_cells* cells_ = nullptr;
};

// Latency buckets from 100 µs to 10 s: a hit takes tens of µs, a fill ms.
const std::vector<double>& latency_buckets();

using label_list = std::vector<std::pair<std::string, std::string>>;
using json_path = std::vector<std::string>;

class registry {
public:
    registry();
    ~registry();
    registry(const registry&) = delete;
    registry& operator=(const registry&) = delete;

    // Families are named once: declaring a series of a known family
    // appends to it (its help and type must match, else std::logic_error).
    // An empty `json` keeps the series out of /stats.
    counter add_counter(const std::string& name, const std::string& help, label_list labels = {},
                        json_path json = {});
    gauge add_gauge(const std::string& name, const std::string& help, label_list labels = {},
                    json_path json = {});
    histogram add_histogram(const std::string& name, const std::string& help, label_list labels = {},
                            const std::vector<double>& bounds = latency_buckets());

    // Series read when rendered. `read` runs on the admin thread: it must be
    // thread-safe, and is called once per render of each series.
    void add_counter_fn(const std::string& name, const std::string& help, label_list labels,
                        std::function<double()> read, json_path json = {});
    void add_gauge_fn(const std::string& name, const std::string& help, label_list labels,
                      std::function<double()> read, json_path json = {});
    // A 0/1 gauge, true/false in /stats ("listening", "leader").
    void add_flag(const std::string& name, const std::string& help, label_list labels,
                  std::function<bool()> read, json_path json = {});
    // A field of /stats only (a reason, a channel name).
    void add_json(json_path json, std::function<boost::json::value()> read);

    // The Prometheus text exposition format 0.0.4, families in declaration order.
    std::string prometheus_text() const;
    // {"cache": {"routes": {"overview": {"hits": 3, ...}}}, ...}: every series
    // and field with a JSON path, in declaration order.
    boost::json::object json() const;

private:
    enum class kind { counter, gauge, histogram };
    struct family;
    struct series;
    struct json_entry;
    series& add_series(const std::string& name, const std::string& help, kind type, label_list labels,
                       json_path json);

    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<family>> families_;
    std::vector<json_entry> json_;  // series and JSON-only fields, in declaration order
};

// Helpers of the text format, exposed for tests.
std::string escape_label_value(std::string_view v);  // \ " and newline escaped
std::string format_value(double v);                  // integers without exponent, +Inf/-Inf/NaN

}  // namespace sidecache::metrics
