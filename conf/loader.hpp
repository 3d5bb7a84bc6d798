#pragma once
// Loads sidecache's YAML configuration into conf::config. The file's layout is
// the structs of conf/config.hpp one to one; conf/sidecache.example.yaml
// documents every key. Any problem throws conf::error, whose what() is
// "FILE:LINE:COL: key.path: what is wrong".

#include "conf/config.hpp"
#include "conf/env.hpp"
#include "conf/error.hpp"

#include <string>
#include <string_view>

namespace sidecache::conf {

// Reads and loads the file at path, expanding ${NAME} from the process
// environment.
config load_file(const std::string& path);
config load_file(const std::string& path, const env_lookup& env);

// Loads YAML text; file_name is used in messages and kept in source_file.
config load_string(std::string_view yaml, std::string_view file_name, const env_lookup& env);

}  // namespace sidecache::conf
