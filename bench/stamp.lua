-- wrk script for punchclock's benchmark: one request shape per run, a hard end to sending.
--
-- Usage: wrk ... -s stamp.lua URL -- METHOD PATH SECONDS CONNECTIONS
--   Every connection sends METHOD PATH back to back for SECONDS, then stops sending and lets its
--   last request finish. wrk's own -d must be a little longer than SECONDS; in that idle tail no
--   request is in flight, so after wrk exits the server holds no half-answered request and the
--   rows in the database can be compared exactly with the 2xx responses counted here.
-- done() prints one line "WRK_RESULT {json}" for the harness, with "unfinished": connections whose last
-- request had not been answered when wrk stopped (0 unless the tail was too short for the slowest request).

local ffi = require("ffi")
ffi.cdef [[
  typedef long time_t;
  struct timespec { time_t tv_sec; long tv_nsec; };
  int clock_gettime(int clk_id, struct timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("struct timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

-- Main (setup/done) environment.
local threads = {}
local started = nil

function setup(thread)
  if started == nil then
    started = now()
  end
  table.insert(threads, thread)
  thread:set("start", started)
end

-- Thread environment.
local deadline = nil
last_done = 0
parked = 0 -- connections of this thread that finished their last request and stopped sending
connections = 0 -- all threads' connections together

function init(args)
  local method = args[1] or "GET"
  local path = args[2] or "/"
  local seconds = tonumber(args[3] or "10")
  connections = tonumber(args[4] or "0")
  deadline = start + seconds
  -- Setting the wrk table (no request() function) keeps the request static: no Lua call per request.
  wrk.method = method
  wrk.path = path
  if method == "POST" then
    wrk.body = ""
    wrk.headers["Content-Length"] = "0"
  end
end

-- Called after each response, before the next request on that connection.
function delay()
  local t = now()
  if t < deadline then
    last_done = t
    return 0
  end
  if t > last_done then
    last_done = t
  end
  parked = parked + 1
  return 3600000 -- past the deadline: send nothing more
end

function done(summary, latency, requests)
  local last = started
  local stopped = 0
  local connections = threads[1]:get("connections")
  for _, thread in ipairs(threads) do
    local t = thread:get("last_done")
    if t ~= nil and t > last then
      last = t
    end
    stopped = stopped + (thread:get("parked") or 0)
  end
  local e = summary.errors
  local fields = {
    string.format('"requests": %d', summary.requests),
    string.format('"unfinished": %d', math.max(0, connections - stopped)),
    string.format('"window_s": %.6f', last - started),
    string.format('"errors_connect": %d', e.connect),
    string.format('"errors_read": %d', e.read),
    string.format('"errors_write": %d', e.write),
    string.format('"errors_status": %d', e.status),
    string.format('"errors_timeout": %d', e.timeout),
    string.format('"latency_mean_us": %.1f', latency.mean),
    string.format('"latency_max_us": %d', latency.max),
    string.format('"p50_us": %d', latency:percentile(50)),
    string.format('"p90_us": %d', latency:percentile(90)),
    string.format('"p99_us": %d', latency:percentile(99)),
    string.format('"p999_us": %d', latency:percentile(99.9)),
  }
  io.write("WRK_RESULT {" .. table.concat(fields, ", ") .. "}\n")
end
