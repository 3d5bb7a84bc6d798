-- wrk script for bench/faults/run: the steady load. KIND=hit GETs the three
-- dashboard routes of the users of TOKENS (cached before the load starts),
-- KIND=pass GETs /api/billing/credits for them (passed through). Answers are
-- counted by status and by the phase named in the file PHASE (re-read every
-- 64 answers: bench/faults/run writes "<fault>:<before|during|after>" there).
-- Last lines: "PHASE <phase> <status> <count>" per phase and status.
local paths = { "/api/dashboard/overview", "/api/dashboard/analytics", "/api/agents" }
if os.getenv("KIND") == "pass" then paths = { "/api/billing/credits" } end
local tokens = {}
local i = 0
local phase_file = os.getenv("PHASE")
local phase = "start"
local seen = 0
counts = {}
threads = {}

function setup(thread) table.insert(threads, thread) end

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

local function read_phase()
  local f = io.open(phase_file, "r")
  if f then
    local p = f:read("*l")
    f:close()
    if p and p ~= "" then phase = p end
  end
end

function response(status, headers, body)
  if seen % 64 == 0 then read_phase() end
  seen = seen + 1
  local key = phase .. " " .. status
  counts[key] = (counts[key] or 0) + 1
end

function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for k, n in pairs(t:get("counts")) do all[k] = (all[k] or 0) + n end
  end
  for k, n in pairs(all) do io.write(string.format("PHASE %s %d\n", k, n)) end
  local e = summary.errors
  io.write(string.format("SOCKET connect %d read %d write %d timeout %d\n", e.connect, e.read, e.write, e.timeout))
end
