-- wrk script: GET WRK_PATH with a bearer token rotated over TOKENS (lines
-- "user_id<TAB>token", bench/peers/tokens.js), each thread from its own offset.
-- With ONE_TOKEN=1 wrk keeps its static request (no per-request Lua) and the
-- token comes from -H. Last line: "RESULT p50_ms p99_ms req_per_s requests errors non2xx".
local path = os.getenv("WRK_PATH") or "/api/dashboard/overview"
local tokens = {}
local i = 0
local thread_no = 0

function setup(thread)
  thread_no = thread_no + 1
  thread:set("id", thread_no)
end

function init(args)
  if os.getenv("ONE_TOKEN") == "1" then return end
  local f = assert(io.open(os.getenv("TOKENS"), "r"))
  for line in f:lines() do
    local tok = line:match("\t(.+)$")
    if tok then tokens[#tokens + 1] = "Bearer " .. tok end
  end
  f:close()
  assert(#tokens > 0, "no tokens")
  i = ((id or 1) - 1) * 7919 % #tokens
end

-- wrk calls request() only if it exists when the script loads (else it
-- sends its static request): defined only when rotating.
if os.getenv("ONE_TOKEN") ~= "1" then
  function request()
    i = i % #tokens + 1
    return wrk.format("GET", path, { ["Authorization"] = tokens[i] })
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %.3f %.3f %.1f %d %d %d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6), summary.requests,
    e.connect + e.read + e.write + e.timeout, e.status))
end
