// Included once per test binary that needs pg_test_db (test/support is not ours).
#include "db/migrate.hpp"
#include "db/pg_test_db.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string_view>
#include <unistd.h>

namespace sidecache::test {

std::string source_dir() {
    if (const char* s = std::getenv("SIDECACHE_SOURCE_DIR")) return s;
    return SIDECACHE_SOURCE_DIR;
}

namespace {
// postgresql://user@host:port/db?x  ->  same with another database name.
std::string with_database(const std::string& url, const std::string& db) {
    auto q = url.find('?');
    auto base = url.substr(0, q);
    auto rest = q == std::string::npos ? "" : url.substr(q);
    auto scheme_end = base.find("://");
    auto slash = base.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
    if (slash != std::string::npos) base.resize(slash);
    return base + "/" + db + rest;
}
}  // namespace

std::optional<pg_test_db> pg_test_db::create(bool migrate) {
    const char* url = std::getenv("SIDECACHE_TEST_DATABASE_URL");
    if (!url || !*url) {
        // A [pg] test without a database fails, unless skipping was asked for.
        const char* skip = std::getenv("SIDECACHE_SKIP_PG");
        if (skip && std::string_view(skip) == "1") {
            WARN("SIDECACHE_SKIP_PG=1: [pg] test skipped");
            return std::nullopt;
        }
        FAIL(
            "SIDECACHE_TEST_DATABASE_URL is unset: start PostgreSQL (scripts/test does, "
            "scripts/pg start prints the URL) or set SIDECACHE_SKIP_PG=1 to skip [pg] tests");
    }
    static std::atomic<int> counter{0};
    pg_test_db t;
    t.admin_url_ = url;
    t.name_ = "sc_db_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    t.url_ = with_database(url, t.name_);
    {
        std::string why;
        auto admin = db::pg_session::open(t.admin_url_, &why);
        INFO(why);
        REQUIRE(admin.has_value());
        (void)admin->execute("DROP DATABASE IF EXISTS " + t.name_);
        auto created = admin->execute("CREATE DATABASE " + t.name_);
        INFO(admin->last_error());
        REQUIRE(created.has_value());
    }
    std::string why;
    auto s = db::pg_session::open(t.url_, &why);
    INFO(why);
    REQUIRE(s.has_value());
    t.session_.emplace(std::move(*s));
    std::ifstream in(source_dir() + "/test/fixtures/legacy_schema.sql");
    std::stringstream schema;
    schema << in.rdbuf();
    t.sql(schema.str());
    if (migrate) REQUIRE(t.migrate(false) == 0);
    return t;
}

pg_test_db::pg_test_db(pg_test_db&& o) noexcept
    : admin_url_(std::move(o.admin_url_)),
      url_(std::move(o.url_)),
      name_(std::move(o.name_)),
      session_(std::move(o.session_)) {
    o.name_.clear();
    o.session_.reset();
}

pg_test_db::~pg_test_db() {
    if (name_.empty()) return;
    session_.reset();
    if (auto admin = db::pg_session::open(admin_url_))
        (void)admin->execute("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
}

std::string pg_test_db::sql(const std::string& text) {
    auto r = session_->execute(text);
    INFO(text.substr(0, 200) << "\n" << session_->last_error());
    REQUIRE(r.has_value());
    if (r->empty() || r->front().empty() || !r->front().front()) return "";
    return *r->front().front();
}

namespace {
// The process has exited (gone, or a zombie): its sockets are closed.
bool exited_pid(const std::string& pid) {
    std::ifstream status("/proc/" + pid + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("State:", 0) == 0) return line.find('Z') != std::string::npos;
    return true;
}
}  // namespace

bool pg_test_db::terminate(const std::string& pid) {
    if (sql("SELECT pg_terminate_backend(" + pid + ")") != "t") return false;
    const auto by = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (sql("SELECT count(*) FROM pg_stat_activity WHERE pid = " + pid) != "0" || !exited_pid(pid)) {
        if (std::chrono::steady_clock::now() >= by) return false;
    }
    return true;
}

bool pg_test_db::terminate_others() {
    const auto pids = sql("SELECT string_agg(pid::text, ' ') FROM pg_stat_activity "
                          "WHERE datname = current_database() AND backend_type = 'client backend' "
                          "AND pid <> pg_backend_pid()");
    std::istringstream each(pids);
    bool all = true;
    for (std::string pid; each >> pid;) all = terminate(pid) && all;
    return all;
}

int pg_test_db::migrate(bool down) {
    conf::config cfg;
    cfg.database.url = url_;
    cfg.database.migrations_dir = source_dir() + "/db/migrations";
    return db::run_migrate(cfg, down);
}

int pg_test_db::refresh() {
    conf::config cfg;
    cfg.database.url = url_;
    return db::run_refresh(cfg);
}

}  // namespace sidecache::test
