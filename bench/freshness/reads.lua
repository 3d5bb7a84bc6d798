-- wrk script for bench/freshness/run: GET the three dashboard endpoints for
-- the users of TOKENS (lines "user_id<TAB>token", test/data/mint.js --all),
-- rotating user and endpoint, and count the answers by their X-Cache header:
-- HIT, STALE or UPDATING (served from the cache past its TTL while one
-- refill runs), anything else (a fill or a wait for one).
-- Last line: "RESULT requests hits stale others non2xx errors p99_ms".
local paths = { "/api/dashboard/overview", "/api/dashboard/analytics", "/api/agents" }
-- READ_DELAY_MS: each connection waits this long between its requests (caps
-- the read rate below what the machine can do: bench/freshness/run --read-rate).
local read_delay = tonumber(os.getenv("READ_DELAY_MS") or "0")
if read_delay > 0 then
  function delay() return read_delay end
end
local tokens = {}
local i = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("TOKENS"), "r"))
  for line in f:lines() do
    local tok = line:match("\t(.+)$")
    if tok then tokens[#tokens + 1] = "Bearer " .. tok end
  end
  f:close()
  assert(#tokens > 0, "no tokens")
  i = ((id or 1) - 1) * 7919
  hits, stale, others, non2xx = 0, 0, 0, 0
end

function request()
  i = i + 1
  local user = i % #tokens + 1
  local path = paths[math.floor(i / #tokens) % #paths + 1]
  return wrk.format("GET", path, { ["Authorization"] = tokens[user] })
end

function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
  local x = headers["X-Cache"] or headers["x-cache"] or ""
  if x:sub(1, 3) == "HIT" then
    hits = hits + 1
  elseif x:sub(1, 5) == "STALE" or x:sub(1, 8) == "UPDATING" then
    stale = stale + 1
  else
    others = others + 1
  end
end

function done(summary, latency, requests)
  local h, s, o, n = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    h = h + t:get("hits"); s = s + t:get("stale"); o = o + t:get("others"); n = n + t:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %.3f\n", summary.requests, h, s, o, n,
    e.connect + e.read + e.write + e.timeout, latency:percentile(99) / 1000))
end
