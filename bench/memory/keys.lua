-- wrk script for bench/memory/run: every (user, route) key once, in order:
-- request i asks route floor(i / users) % 3 for user i % users (TOKENS:
-- lines "user_id<TAB>token"), and the thread stops after KEYS answers. Use
-- with -t1. When done it writes "RESULT answers non2xx" and ends wrk (its
-- thread:stop() would leave the main thread sleeping out -d).
local paths = { "/api/dashboard/overview", "/api/dashboard/analytics", "/api/agents" }
local tokens = {}
local i = -1
local answered = 0
local limit = tonumber(os.getenv("KEYS"))
non2xx = 0

function init(args)
  local f = assert(io.open(os.getenv("TOKENS"), "r"))
  for line in f:lines() do
    local tok = line:match("\t(.+)$")
    if tok then tokens[#tokens + 1] = "Bearer " .. tok end
  end
  f:close()
  assert(#tokens > 0, "no tokens")
end

function request()
  i = i + 1
  local user = i % #tokens + 1
  local path = paths[math.floor(i / #tokens) % #paths + 1]
  return wrk.format("GET", path, { ["Authorization"] = tokens[user] })
end

function response(status, headers, body)
  answered = answered + 1
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
  if answered >= limit then
    io.write(string.format("RESULT %d %d\n", answered, non2xx))
    io.flush()
    os.exit(0)
  end
end
