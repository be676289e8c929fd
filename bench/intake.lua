-- wrk script for bench/intake.py: every request is a new, pre-signed event.
--
--   wrk -t1 -c32 -d10s --latency -s bench/intake.lua URL -- EVENTS_FILE THREADS
--
-- EVENTS_FILE holds one event per line, "signature<TAB>body". Thread k of THREADS sends lines
-- k, k+THREADS, k+2*THREADS, ... in order, each exactly once: init() turns its share into
-- ready-made HTTP requests, so building a request during the run is a table lookup. When a
-- thread has sent its last line it sends a GET to /__bench_exhausted (404 on both targets, never
-- an event) and stops; the Python side treats such a run as invalid (the file was too short).
--
-- Each thread writes "ZB_BENCH_READY" to stderr once its requests are built (wrk starts its
-- clock right after). response() counts answers per HTTP status. done() prints one line,
-- "ZB_BENCH_RESULT {json}", with the summary, the latency percentiles in microseconds (after
-- wrk's correction for coordinated omission, as --latency prints them) and, per thread, how many
-- lines it handed to wrk, how many sentinel requests went out and the status counts.

local threads = {}

function setup(thread)
   thread:set("thread_id", #threads)
   table.insert(threads, thread)
end

local function host_header()
   if wrk.port then
      return wrk.host .. ":" .. wrk.port
   end
   return wrk.host
end

local function load_requests(file, share, count, host)
   local requests = {}
   local number = 0
   for line in io.lines(file) do
      if number % count == share then
         local tab = line:find("\t", 1, true)
         local body = line:sub(tab + 1)
         requests[#requests + 1] = table.concat({
            "POST ", wrk.path, " HTTP/1.1\r\n",
            "Host: ", host, "\r\n",
            "Content-Type: application/json\r\n",
            "zenoti-webhook-signature: ", line:sub(1, tab - 1), "\r\n",
            "Content-Length: ", #body, "\r\n\r\n",
            body,
         })
      end
      number = number + 1
   end
   return requests
end

function init(args)
   local host = host_header()
   requests = load_requests(args[1], thread_id, tonumber(args[2]), host)
   total = #requests
   handed_out = 0
   sentinels = 0
   sentinel = "GET /__bench_exhausted HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"
   statuses = {}
   io.stderr:write("ZB_BENCH_READY\n")
   io.stderr:flush()
end

function request()
   if handed_out < total then
      handed_out = handed_out + 1
      local next_request = requests[handed_out]
      requests[handed_out] = nil
      return next_request
   end
   sentinels = sentinels + 1
   wrk.thread:stop()
   return sentinel
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

local function json_counts(counts)
   local parts = {}
   for status, n in pairs(counts) do
      parts[#parts + 1] = string.format('"%d":%d', status, n)
   end
   return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
   local per_thread = {}
   for _, thread in ipairs(threads) do
      per_thread[#per_thread + 1] = string.format(
         '{"lines":%d,"handed_out":%d,"sentinels":%d,"statuses":%s}',
         thread:get("total"), thread:get("handed_out"), thread:get("sentinels"),
         json_counts(thread:get("statuses") or {}))
   end
   local e = summary.errors
   io.write(string.format(
      'ZB_BENCH_RESULT {"duration_us":%d,"requests":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d},' ..
      '"threads":[%s]}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9),
      table.concat(per_thread, ",")))
end
