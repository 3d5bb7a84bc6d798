#include "l2/resp.hpp"

#include <hiredis/hiredis.h>

#include <new>

namespace sidecache::l2 {

std::string format_command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> argvlen;
    argv.reserve(args.size());
    argvlen.reserve(args.size());
    for (const auto& a : args) {
        argv.push_back(a.data());
        argvlen.push_back(a.size());
    }
    char* target = nullptr;
    const int len =
        redisFormatCommandArgv(&target, static_cast<int>(args.size()), argv.data(), argvlen.data());
    if (len < 0 || !target) throw std::bad_alloc();
    std::string out(target, static_cast<std::size_t>(len));
    redisFreeCommand(target);
    return out;
}

namespace {

// hiredis's reply tree (redisReply, RESP2) as our own.
reply convert(const redisReply& r) {
    reply out;
    switch (r.type) {
    case REDIS_REPLY_STRING:
        out.type = reply::kind::string;
        out.str.assign(r.str, r.len);
        break;
    case REDIS_REPLY_STATUS:
        out.type = reply::kind::status;
        out.str.assign(r.str, r.len);
        break;
    case REDIS_REPLY_ERROR:
        out.type = reply::kind::error;
        out.str.assign(r.str, r.len);
        break;
    case REDIS_REPLY_INTEGER:
        out.type = reply::kind::integer;
        out.integer = r.integer;
        break;
    case REDIS_REPLY_ARRAY:
        out.type = reply::kind::array;
        out.elements.reserve(r.elements);
        for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(convert(*r.element[i]));
        break;
    default:  // REDIS_REPLY_NIL
        out.type = reply::kind::nil;
        break;
    }
    return out;
}

}  // namespace

void resp_reader::free_reader::operator()(redisReader* r) const noexcept {
    redisReaderFree(r);
}

resp_reader::resp_reader() : reader_(redisReaderCreate()) {
    if (!reader_) throw std::bad_alloc();
}
resp_reader::~resp_reader() = default;
resp_reader::resp_reader(resp_reader&&) noexcept = default;
resp_reader& resp_reader::operator=(resp_reader&&) noexcept = default;

boost::system::result<void> resp_reader::feed(const char* data, std::size_t size) {
    if (redisReaderFeed(reader_.get(), data, size) != REDIS_OK) return make_error_code(error::protocol);
    return {};
}

boost::system::result<std::optional<reply>> resp_reader::next() {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) return make_error_code(error::protocol);
    if (!raw) return std::optional<reply>{};
    // Freed however convert() ends (it may throw bad_alloc).
    std::unique_ptr<redisReply, void (*)(void*)> owned(static_cast<redisReply*>(raw), freeReplyObject);
    return std::optional<reply>(convert(*owned));
}

}  // namespace sidecache::l2
