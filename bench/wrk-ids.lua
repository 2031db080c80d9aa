-- wrk-ids.lua: a wrk (4.x) script for the projector benchmark
-- (bench/run.sh, projector). Each request GETs a path where "{n}" becomes
-- a random number below IDS, zero-padded to PAD digits, so requests spread
-- over many workflows; the connections are kept alive (wrk's HTTP/1.1).
--
--   wrk -t2 -c32 -d20s --latency -s bench/wrk-ids.lua \
--       http://127.0.0.1:PORT -- '/api/v1/workflows/wf-{n}' 1000000 7
--
-- With KEEL_WRK_JSON set, done() writes the figures there as JSON, in the
-- shape keel-bench-http writes (requests_per_s, latency_ms.p50/p90/p99/
-- max/mean), labelled with KEEL_WRK_LABEL; non_200 counts answers wrk calls
-- status errors (400 and over).

local threads = 0
local path, ids, pad = "/api/v1/workflows/wf-{n}", 1000000, 7
local before, after, fmt

-- Main state: number the threads, so each draws its own sequence.
function setup(thread)
   threads = threads + 1
   thread:set("thread_no", threads)
end

-- Each thread's state: the arguments after "--".
function init(args)
   path = args[1] or path
   ids = tonumber(args[2] or ids)
   pad = tonumber(args[3] or pad)
   local at = string.find(path, "{n}", 1, true)
   if at then
      before, after = string.sub(path, 1, at - 1), string.sub(path, at + 3)
      fmt = "%0" .. pad .. "d"
   end
   math.randomseed(os.time() * 1000 + (thread_no or 0) * 7919)
end

function request()
   if not fmt then
      return wrk.format("GET", path)
   end
   return wrk.format("GET", before .. string.format(fmt, math.random(0, ids - 1)) .. after)
end

function done(summary, latency, requests)
   local out = os.getenv("KEEL_WRK_JSON")
   if not out or out == "" then
      return
   end
   local secs = summary.duration / 1e6
   local e = summary.errors
   local function ms(us) return us / 1000.0 end
   local f = assert(io.open(out, "w"))
   f:write(string.format(
      '{"bench": "wrk", "label": "%s", "threads": %d, "requests": %d, ' ..
      '"seconds": %.3f, "requests_per_s": %.1f, ' ..
      '"latency_ms": {"n": %d, "p50": %.3f, "p90": %.3f, "p99": %.3f, ' ..
      '"max": %.3f, "mean": %.3f}, "non_200": %d, "errors": %d, ' ..
      '"socket_errors": {"connect": %d, "read": %d, "write": %d, ' ..
      '"timeout": %d}, "mean_answer_bytes": %.0f}\n',
      os.getenv("KEEL_WRK_LABEL") or "wrk", threads, summary.requests, secs,
      summary.requests / secs, summary.requests,
      ms(latency:percentile(50)), ms(latency:percentile(90)),
      ms(latency:percentile(99)), ms(latency.max), ms(latency.mean),
      e.status, e.connect + e.read + e.write + e.timeout,
      e.connect, e.read, e.write, e.timeout,
      summary.requests > 0 and summary.bytes / summary.requests or 0))
   f:close()
end
