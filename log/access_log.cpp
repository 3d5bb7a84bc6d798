#include "log/access_log.hpp"

#include "log/logger.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <iterator>
#include <unordered_map>

namespace sidecache::log {

namespace {

std::atomic<std::uint64_t> next_instance{1};

// Appends `text` as the inside of a JSON string. Bytes outside printable
// ASCII are escaped one by one (\u00XX), so the line stays valid JSON
// whatever a client sent.
void append_escaped(std::string& out, std::string_view text) {
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20 || c >= 0x7f) {
            fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
        } else {
            out += ch;
        }
    }
}

double milliseconds(std::chrono::steady_clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

std::string random_key() {
    std::string key(32, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) != 1)
        throw std::runtime_error("access log: no random bytes for log.user_hash_key");
    return key;
}

}  // namespace

std::string without_query_values(std::string_view target) {
    const auto question = target.find('?');
    if (question == std::string_view::npos) return std::string(target);
    std::string out(target.substr(0, question + 1));
    auto query = target.substr(question + 1);
    for (bool first = true; !query.empty() || first; first = false) {
        const auto amp = query.find('&');
        const auto param = query.substr(0, amp);
        if (!first) out += '&';
        out += param.substr(0, param.find('='));
        if (!param.empty()) out += '=';
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return out;
}

// One thread's lines not written yet, and the hashes of the users it saw
// lately (an HMAC per request would cost more than the rest of the line).
struct access_log::buffer {
    std::thread::id owner;
    std::mutex mutex;  // the recording thread and the writer
    std::string text;
    std::unordered_map<std::string, std::string> user_hashes;  // the recording thread only
};

access_log::access_log(access_log_options options)
    : options_(std::move(options)), instance_(next_instance.fetch_add(1)) {
    if (options_.user_hash_key.empty()) options_.user_hash_key = random_key();
    writer_ = std::thread([this] { run_writer(); });
}

access_log::~access_log() {
    {
        std::lock_guard lock(writer_mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    writer_.join();
    flush();
}

std::string access_log::user_hash(std::string_view user_id) const {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    HMAC(EVP_sha256(), options_.user_hash_key.data(), static_cast<int>(options_.user_hash_key.size()),
         reinterpret_cast<const unsigned char*>(user_id.data()), user_id.size(), digest, &size);
    std::string hex;
    for (unsigned i = 0; i < 8 && i < size; ++i) fmt::format_to(std::back_inserter(hex), "{:02x}", digest[i]);
    return hex;
}

access_log::buffer& access_log::local_buffer() {
    // Each thread remembers its buffer of the log it recorded to last; the
    // instance number (not the address) tells whether that log is this one.
    thread_local std::uint64_t cached_instance = 0;
    thread_local buffer* cached = nullptr;
    if (cached_instance == instance_) return *cached;
    std::lock_guard lock(buffers_mutex_);
    const auto self = std::this_thread::get_id();
    cached = nullptr;
    for (auto& b : buffers_)
        if (b->owner == self) cached = b.get();
    if (!cached) {
        buffers_.push_back(std::make_unique<buffer>());
        buffers_.back()->owner = self;
        cached = buffers_.back().get();
    }
    cached_instance = instance_;
    return *cached;
}

void access_log::record(const access_entry& e) noexcept {
    try {
        auto& b = local_buffer();
        std::string user;
        if (!e.user_id.empty()) {
            auto known = b.user_hashes.find(std::string(e.user_id));
            if (known == b.user_hashes.end()) {
                if (b.user_hashes.size() >= 4096) b.user_hashes.clear();
                known = b.user_hashes.emplace(std::string(e.user_id), user_hash(e.user_id)).first;
            }
            user = known->second;
        }
        bool wake = false;
        {
            std::lock_guard lock(b.mutex);
            if (b.text.size() >= options_.max_bytes) {
                dropped_.fetch_add(1, std::memory_order_relaxed);
                return;
            }
            auto& out = b.text;
            out += "{\"time\":\"";
            out += format_time(e.time);
            out += "\",\"method\":\"";
            append_escaped(out, e.method);
            out += "\",\"path\":\"";
            append_escaped(out, without_query_values(e.target));
            fmt::format_to(std::back_inserter(out), "\",\"status\":{},\"bytes\":{},\"duration_ms\":{:.3f}",
                           e.status, e.bytes, milliseconds(e.duration));
            out += ",\"cache\":\"";
            append_escaped(out, e.cache);
            out += '"';
            if (e.upstream)
                fmt::format_to(std::back_inserter(out), ",\"upstream_ms\":{:.3f}", milliseconds(*e.upstream));
            if (e.fill) fmt::format_to(std::back_inserter(out), ",\"fill_ms\":{:.3f}", milliseconds(*e.fill));
            if (!user.empty()) {
                out += ",\"user\":\"";
                out += user;
                out += '"';
            }
            out += "}\n";
            wake = out.size() >= options_.flush_bytes;
        }
        recorded_.fetch_add(1, std::memory_order_relaxed);
        if (wake) {
            {
                std::lock_guard lock(writer_mutex_);
                urgent_ = true;
            }
            wake_.notify_one();
        }
    } catch (...) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
    }
}

void access_log::flush() {
    std::lock_guard output(output_mutex_);
    std::vector<buffer*> all;
    {
        std::lock_guard lock(buffers_mutex_);
        for (auto& b : buffers_) all.push_back(b.get());
    }
    std::string out;
    for (auto* b : all) {
        {
            std::lock_guard lock(b->mutex);
            out.swap(b->text);  // the buffer keeps `out`'s (empty) capacity
        }
        write_all(options_.fd, out);
        out.clear();
    }
}

void access_log::run_writer() {
    std::unique_lock lock(writer_mutex_);
    while (!stopping_) {
        wake_.wait_for(lock, options_.flush_interval, [this] { return stopping_ || urgent_; });
        urgent_ = false;
        lock.unlock();
        flush();
        lock.lock();
    }
}

}  // namespace sidecache::log
