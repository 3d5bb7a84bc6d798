-- wrk script: GET one path with a rotating bearer token, and print machine-readable figures.
--   TOKENS=file (lines "user_id<TAB>token", from test/data/mint.js --all)
--   WRK_PATH=/api/dashboard/overview   SHUFFLE=1 (random user per request, seeded per thread)
--   wrk -s bench/legacy/tokens.lua ...  ->  last line: "RESULT p50_ms p95_ms p99_ms req_per_s requests errors non2xx"
local tokens = {}
local i = 0
local path = os.getenv("WRK_PATH") or "/api/dashboard/overview"
local shuffle = os.getenv("SHUFFLE") == "1"
local thread_no = 0

function setup(thread)
  thread_no = thread_no + 1
  thread:set("id", thread_no)
end

function init(args)
  local f = assert(io.open(os.getenv("TOKENS") or "tokens.tsv", "r"))
  for line in f:lines() do
    local tok = line:match("\t(.+)$")
    if tok then tokens[#tokens + 1] = tok end
  end
  f:close()
  assert(#tokens > 0, "no tokens")
  math.randomseed(1000 + (id or 0))
  i = (id or 0) * 7919
end

function request()
  if shuffle then i = math.random(#tokens) else i = i % #tokens + 1 end
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. tokens[i] })
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT %.2f %.2f %.2f %.1f %d %d %d\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.requests / secs, summary.requests, e.connect + e.read + e.write + e.timeout, e.status))
end
