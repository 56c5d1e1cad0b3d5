-- wrk script for Wharf's intake benchmarks: POST with no body, and a JSON summary at the end.
--
--   wrk -s bench/wrk/webhook.lua URL                         POST to URL itself (one hot webhook)
--   wrk -s bench/wrk/webhook.lua URL -- PATHS THREADS        POST round-robin over the paths in PATHS
--                                                            (one per line); THREADS = wrk's -t, so each
--                                                            thread takes every THREADS-th path
-- The last line printed is {"wrk": {...}} with requests, errors and latency percentiles (µs).

wrk.method = "POST"
wrk.body = nil

local paths = nil
local cursor = 0
local step = 1
local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   if args[1] ~= nil then
      paths = {}
      for line in io.lines(args[1]) do
         if #line > 0 then paths[#paths + 1] = line end
      end
      step = tonumber(args[2] or "1")
      cursor = tid or 0
   end
end

function request()
   if paths == nil then
      return wrk.format("POST")
   end
   local path = paths[(cursor % #paths) + 1]
   cursor = cursor + step
   return wrk.format("POST", path)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '{"wrk": {"requests": %d, "durationMicros": %d, "bytes": %d, "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latencyMicros": {"p50": %d, "p90": %d, "p99": %d, "p999": %d, "max": %d, "mean": %.1f}}}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
end
