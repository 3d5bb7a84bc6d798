#include "metrics/registry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace sidecache::metrics {

namespace {

std::atomic<std::size_t> next_shard{0};

bool valid_name(std::string_view n, bool colon) {
    if (n.empty()) return false;
    for (std::size_t i = 0; i < n.size(); ++i) {
        const char c = n[i];
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return true;
}

std::string escape_help(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

// {a="x",b="y"}, or "" without labels; `extra` (le="...") goes last.
std::string label_text(const label_list& labels, std::string_view extra = {}) {
    if (labels.empty() && extra.empty()) return {};
    std::string out = "{";
    for (const auto& [name, value] : labels) {
        if (out.size() > 1) out += ',';
        out += name;
        out += "=\"";
        out += escape_label_value(value);
        out += '"';
    }
    if (!extra.empty()) {
        if (out.size() > 1) out += ',';
        out += extra;
    }
    out += '}';
    return out;
}

const char* type_name(int k) {
    switch (k) {
    case 0:
        return "counter";
    case 1:
        return "gauge";
    default:
        return "histogram";
    }
}

}  // namespace

std::size_t this_thread_shard() noexcept {
    thread_local const std::size_t shard = next_shard.fetch_add(1, std::memory_order_relaxed) % shard_count;
    return shard;
}

std::uint64_t counter::value() const noexcept {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < shard_count; ++i) sum += cells_[i].value.load(std::memory_order_relaxed);
    return sum;
}

void histogram::observe(double seconds) const noexcept {
    auto& shard = cells_->shards[this_thread_shard()];
    const auto& bounds = cells_->bounds;
    std::size_t i = 0;
    while (i < bounds.size() && seconds > bounds[i]) ++i;
    shard.counts[i].fetch_add(1, std::memory_order_relaxed);
    if (seconds > 0)
        shard.sum_ns.fetch_add(static_cast<std::uint64_t>(seconds * 1e9), std::memory_order_relaxed);
}

const std::vector<double>& latency_buckets() {
    static const std::vector<double> buckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                             0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};
    return buckets;
}

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<long long>(v));
    return fmt::format("{}", v);
}

struct registry::series {
    label_list labels;
    std::string labels_text;
    std::unique_ptr<counter_shard[]> counter_cells;
    std::unique_ptr<std::atomic<std::int64_t>> gauge_cell;
    std::unique_ptr<histogram_cells> histogram_cells_;
    std::function<double()> read;
    bool flag = false;  // true/false in JSON

    double value() const {
        if (read) return read();
        if (counter_cells) return static_cast<double>(counter(counter_cells.get()).value());
        if (gauge_cell) return static_cast<double>(gauge_cell->load(std::memory_order_relaxed));
        return 0;
    }
    boost::json::value json_value() const {
        if (flag) return read() != 0;
        if (counter_cells) return counter(counter_cells.get()).value();
        if (gauge_cell) return gauge_cell->load(std::memory_order_relaxed);
        const double v = read();
        if (v == std::floor(v) && std::fabs(v) < 1e15) return static_cast<std::int64_t>(v);
        return v;
    }
};

struct registry::family {
    std::string name;
    std::string help;
    kind type;
    std::vector<std::unique_ptr<series>> members;
};

struct registry::json_entry {
    json_path path;
    const series* from = nullptr;                 // a series, or
    std::function<boost::json::value()> read;  // a JSON-only field
};

registry::registry() = default;
registry::~registry() = default;

registry::series& registry::add_series(const std::string& name, const std::string& help, kind type,
                                       label_list labels, json_path json) {
    if (!valid_name(name, true)) throw std::logic_error("metrics: bad metric name '" + name + "'");
    for (const auto& [label, value] : labels) {
        if (!valid_name(label, false) || label.starts_with("__") || label == "le")
            throw std::logic_error("metrics: bad label name '" + label + "' of " + name);
    }
    auto it = std::find_if(families_.begin(), families_.end(), [&](const auto& f) { return f->name == name; });
    if (it == families_.end()) {
        families_.push_back(std::make_unique<family>(family{name, help, type, {}}));
        it = families_.end() - 1;
    } else if ((*it)->type != type || (*it)->help != help) {
        throw std::logic_error("metrics: " + name + " declared twice with another type or help");
    }
    auto text = label_text(labels);
    for (const auto& s : (*it)->members) {
        if (s->labels_text == text) throw std::logic_error("metrics: " + name + text + " declared twice");
    }
    auto s = std::make_unique<series>();
    s->labels = std::move(labels);
    s->labels_text = std::move(text);
    auto& added = *s;
    (*it)->members.push_back(std::move(s));
    if (!json.empty()) json_.push_back(json_entry{std::move(json), &added, {}});
    return added;
}

counter registry::add_counter(const std::string& name, const std::string& help, label_list labels,
                              json_path json) {
    std::lock_guard lock(mutex_);
    auto& s = add_series(name, help, kind::counter, std::move(labels), std::move(json));
    s.counter_cells = std::make_unique<counter_shard[]>(shard_count);
    return counter(s.counter_cells.get());
}

gauge registry::add_gauge(const std::string& name, const std::string& help, label_list labels,
                          json_path json) {
    std::lock_guard lock(mutex_);
    auto& s = add_series(name, help, kind::gauge, std::move(labels), std::move(json));
    s.gauge_cell = std::make_unique<std::atomic<std::int64_t>>(0);
    return gauge(s.gauge_cell.get());
}

histogram registry::add_histogram(const std::string& name, const std::string& help, label_list labels,
                                  const std::vector<double>& bounds) {
    if (bounds.size() > max_buckets || !std::is_sorted(bounds.begin(), bounds.end()))
        throw std::logic_error("metrics: " + name + ": at most 16 ascending bucket bounds");
    std::lock_guard lock(mutex_);
    auto& s = add_series(name, help, kind::histogram, std::move(labels), {});
    s.histogram_cells_ = std::make_unique<histogram_cells>();
    s.histogram_cells_->bounds = bounds;
    return histogram(s.histogram_cells_.get());
}

void registry::add_counter_fn(const std::string& name, const std::string& help, label_list labels,
                              std::function<double()> read, json_path json) {
    std::lock_guard lock(mutex_);
    add_series(name, help, kind::counter, std::move(labels), std::move(json)).read = std::move(read);
}

void registry::add_gauge_fn(const std::string& name, const std::string& help, label_list labels,
                            std::function<double()> read, json_path json) {
    std::lock_guard lock(mutex_);
    add_series(name, help, kind::gauge, std::move(labels), std::move(json)).read = std::move(read);
}

void registry::add_flag(const std::string& name, const std::string& help, label_list labels,
                        std::function<bool()> read, json_path json) {
    std::lock_guard lock(mutex_);
    auto& s = add_series(name, help, kind::gauge, std::move(labels), std::move(json));
    s.read = [read = std::move(read)] { return read() ? 1.0 : 0.0; };
    s.flag = true;
}

void registry::add_json(json_path json, std::function<boost::json::value()> read) {
    std::lock_guard lock(mutex_);
    json_.push_back(json_entry{std::move(json), nullptr, std::move(read)});
}

std::string registry::prometheus_text() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& f : families_) {
        fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", f->name, escape_help(f->help),
                       f->name, type_name(static_cast<int>(f->type)));
        for (const auto& s : f->members) {
            if (!s->histogram_cells_) {
                fmt::format_to(std::back_inserter(out), "{}{} {}\n", f->name, s->labels_text,
                               format_value(s->value()));
                continue;
            }
            // Shards summed per bucket, then made cumulative.
            const auto& h = *s->histogram_cells_;
            std::array<std::uint64_t, max_buckets + 1> counts{};
            std::uint64_t sum_ns = 0;
            for (const auto& shard : h.shards) {
                for (std::size_t i = 0; i <= h.bounds.size(); ++i)
                    counts[i] += shard.counts[i].load(std::memory_order_relaxed);
                sum_ns += shard.sum_ns.load(std::memory_order_relaxed);
            }
            std::uint64_t cumulative = 0;
            for (std::size_t i = 0; i <= h.bounds.size(); ++i) {
                cumulative += counts[i];
                const auto le = i < h.bounds.size() ? format_value(h.bounds[i]) : std::string("+Inf");
                fmt::format_to(std::back_inserter(out), "{}_bucket{} {}\n", f->name,
                               label_text(s->labels, "le=\"" + le + "\""), cumulative);
            }
            fmt::format_to(std::back_inserter(out), "{}_sum{} {}\n{}_count{} {}\n", f->name, s->labels_text,
                           format_value(static_cast<double>(sum_ns) / 1e9), f->name, s->labels_text,
                           cumulative);
        }
    }
    return out;
}

boost::json::object registry::json() const {
    std::lock_guard lock(mutex_);
    boost::json::object out;
    for (const auto& entry : json_) {
        boost::json::object* at = &out;
        for (std::size_t i = 0; i + 1 < entry.path.size(); ++i) {
            auto& next = (*at)[entry.path[i]];
            if (!next.is_object()) next = boost::json::object{};
            at = &next.as_object();
        }
        (*at)[entry.path.back()] = entry.from ? entry.from->json_value() : entry.read();
    }
    return out;
}

}  // namespace sidecache::metrics
