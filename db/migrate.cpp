#include "db/migrate.hpp"

#include "db/pg_connection.hpp"
#include "db/refresh.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace sidecache::db {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view no_transaction_marker = "-- sidecache:no-transaction";

struct migration {
    int version = 0;
    std::string name;  // file stem, "001_indexes"
    fs::path up;
    std::optional<fs::path> down;
};

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    if (!in) throw std::runtime_error(fmt::format("cannot read {}", p.string()));
    return s.str();
}

// NNN_name.sql and NNN_name.down.sql of the folder, by version.
std::map<int, migration> list_migrations(const fs::path& dir) {
    std::map<int, migration> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        auto file = e.path().filename().string();
        if (file.size() < 5 || !file.ends_with(".sql") || !std::isdigit(static_cast<unsigned char>(file[0])))
            continue;
        bool is_down = file.ends_with(".down.sql");
        auto stem = file.substr(0, file.size() - (is_down ? 9 : 4));
        int version = std::stoi(stem);
        auto& m = out[version];
        m.version = version;
        if (is_down) {
            m.down = e.path();
        } else {
            if (!m.name.empty()) throw std::runtime_error(fmt::format("two migrations numbered {}", version));
            m.name = stem;
            m.up = e.path();
        }
    }
    for (const auto& [v, m] : out)
        if (m.up.empty())
            throw std::runtime_error(fmt::format("{}: a down file without its migration", m.down->string()));
    return out;
}

// Statements of a no-transaction file: they end with ';' at the end of a line.
std::vector<std::string> split_statements(const std::string& text) {
    std::vector<std::string> out;
    std::string current;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        auto trimmed = line;
        while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back())))
            trimmed.pop_back();
        if (trimmed.starts_with("--") || (current.empty() && trimmed.empty())) continue;
        current += line + "\n";
        if (trimmed.ends_with(";")) {
            out.push_back(std::move(current));
            current.clear();
        }
    }
    if (current.find_first_not_of(" \t\n") != std::string::npos) out.push_back(current);
    return out;
}

bool run_file(pg_session& s, const fs::path& file, const std::string& record_sql) {
    auto text = read_file(file);
    if (text.starts_with(no_transaction_marker)) {
        // An interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index that
        // IF NOT EXISTS would keep: drop ours first.
        auto invalid = s.execute(
            "SELECT format('DROP INDEX CONCURRENTLY IF EXISTS %I.%I', n.nspname, c.relname) "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE NOT i.indisvalid AND c.relname LIKE 'sidecache\\_%'");
        if (!invalid) return false;
        for (const auto& row : *invalid)
            if (!s.execute(*row[0])) return false;
        for (const auto& stmt : split_statements(text))
            if (!s.execute(stmt)) return false;
        return static_cast<bool>(s.execute(record_sql));
    }
    if (!s.execute("BEGIN")) return false;
    if (!s.execute(text) || !s.execute(record_sql) || !s.execute("COMMIT")) {
        auto error = s.last_error();
        (void)s.execute("ROLLBACK");
        return false;
    }
    return true;
}

std::optional<pg_session> open_session(const conf::config& cfg) {
    if (cfg.database.url.empty()) {
        std::fprintf(stderr, "sidecache: database.url is empty in %s\n", cfg.source_file.c_str());
        return std::nullopt;
    }
    std::string why;
    auto s = pg_session::open(cfg.database.url, &why);
    if (!s) {
        std::fprintf(stderr, "sidecache: cannot connect to PostgreSQL: %s\n", why.c_str());
        return std::nullopt;
    }
    return std::move(*s);
}

std::string quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') out += '\'';
        out += c;
    }
    return out + "'";
}

}  // namespace

int run_migrate(const conf::config& cfg, bool down) {
    auto s = open_session(cfg);
    if (!s) return 1;
    auto fail = [&](const std::string& what) {
        std::fprintf(stderr, "sidecache migrate: %s: %s\n", what.c_str(), s->last_error().c_str());
        (void)s->execute("SELECT pg_advisory_unlock_all()");
        return 1;
    };
    std::map<int, migration> files;
    try {
        files = list_migrations(cfg.database.migrations_dir);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sidecache migrate: database.migrations_dir '%s': %s\n",
                     cfg.database.migrations_dir.c_str(), e.what());
        return 1;
    }
    if (!s->execute("SELECT pg_advisory_lock(1399742796, 3)")) return fail("advisory lock");
    if (!s->execute("CREATE SCHEMA IF NOT EXISTS sidecache; "
                    "CREATE TABLE IF NOT EXISTS sidecache.schema_migrations ("
                    " version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"))
        return fail("creating sidecache.schema_migrations");
    auto rows = s->execute("SELECT version FROM sidecache.schema_migrations ORDER BY version");
    if (!rows) return fail("reading sidecache.schema_migrations");
    std::set<int> applied;
    for (const auto& r : *rows) applied.insert(std::stoi(*r[0]));

    try {
        if (!down) {
            int count = 0;
            for (const auto& [v, m] : files) {
                if (applied.contains(v)) continue;
                auto record = fmt::format(
                    "INSERT INTO sidecache.schema_migrations (version, name) "
                    "VALUES ({}, {}) ON CONFLICT DO NOTHING",
                    v, quote(m.name));
                if (!run_file(*s, m.up, record)) return fail(m.up.string());
                std::printf("applied %s\n", m.name.c_str());
                ++count;
            }
            std::printf("migrations: %d applied, %zu already there\n", count, applied.size());
            // 005's triggers notify the channel written here: this configuration's.
            auto has_settings = s->execute("SELECT to_regclass('sidecache.notify_settings') IS NOT NULL");
            if (!has_settings) return fail("looking for sidecache.notify_settings");
            if ((*has_settings)[0][0] == "t") {
                std::string channel[] = {cfg.database.notify_channel};
                if (!s->query("UPDATE sidecache.notify_settings SET channel = $1 WHERE channel <> $1",
                              channel))
                    return fail("writing sidecache.notify_settings.channel");
            }
        } else {
            for (auto it = applied.rbegin(); it != applied.rend(); ++it) {
                auto f = files.find(*it);
                if (f == files.end() || !f->second.down) {
                    std::fprintf(stderr, "sidecache migrate --down: no down file for version %d\n", *it);
                    (void)s->execute("SELECT pg_advisory_unlock_all()");
                    return 1;
                }
                auto record = fmt::format("DELETE FROM sidecache.schema_migrations WHERE version = {}", *it);
                if (!run_file(*s, *f->second.down, record)) return fail(f->second.down->string());
                std::printf("reverted %s\n", f->second.name.c_str());
            }
            if (!s->execute("DROP SCHEMA IF EXISTS sidecache CASCADE"))
                return fail("dropping schema sidecache");
            std::printf("migrations: %zu reverted, schema sidecache dropped\n", applied.size());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sidecache migrate: %s\n", e.what());
        (void)s->execute("SELECT pg_advisory_unlock_all()");
        return 1;
    }
    (void)s->execute("SELECT pg_advisory_unlock_all()");
    return 0;
}

int run_refresh(const conf::config& cfg) {
    auto s = open_session(cfg);
    if (!s) return 1;
    auto locked = s->execute(refresh_try_lock_sql);
    if (!locked) {
        std::fprintf(stderr, "sidecache refresh: %s\n", s->last_error().c_str());
        return 1;
    }
    if ((*locked)[0][0] != "t") {
        std::printf("refresh skipped: another sidecar is refreshing\n");
        return 0;
    }
    for (const auto& step : refresh_steps(refresh_reason::command, refresher_name())) {
        if (!s->execute(step)) {
            std::fprintf(stderr, "sidecache refresh: %s: %s\n", step.c_str(), s->last_error().c_str());
            (void)s->execute(refresh_abort_sql);
            return 1;
        }
    }
    (void)s->execute(refresh_unlock_sql);
    auto state = s->execute("SELECT boundary::text, refreshed_at::text FROM sidecache.refresh_state");
    if (state && !state->empty())
        std::printf("refreshed: views cover calls before %s\n", (*state)[0][0].value_or("?").c_str());
    return 0;
}

}  // namespace sidecache::db
