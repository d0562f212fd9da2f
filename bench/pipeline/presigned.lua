-- wrk script of bench/pipeline's throughput phase: sends pre-signed intake requests, each once.
--
-- bench/pipeline/wrk.py writes the requests file first (one request a line: shop code, Unix
-- timestamp, signature and the JSON body, tab-separated), signed by Python over exactly these
-- bytes, so wrk only sends: the bench measures ATOM, not the load generator's HMAC and JSON.
-- Thread k of n takes lines k, k+n, k+2n, ...; a thread that has sent its share waits for the
-- answers and stops, so no request is sent twice and none is cut off in flight (wrk itself
-- still runs for its -d duration). A server that closes a keep-alive connection makes wrk drop
-- the request it had built for it (it builds another on the new connection): at most one per
-- connection closed is never sent. done() prints one JSON line (RESULT {...}) that wrk.py reads.
--
--   wrk -t2 -c16 -d60s -s presigned.lua http://127.0.0.1:PORT/api/v1/aftersales -- FILE

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local path = args[1]
  local nthreads = tonumber(args[2])
  requests = {}
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == id then
      local shop, ts, sig, body = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", wrk.path, {
        ["Content-Type"] = "application/json",
        ["X-Atom-Shop"] = shop,
        ["X-Atom-Timestamp"] = ts,
        ["X-Atom-Signature"] = sig,
      }, body)
    end
    i = i + 1
  end
  nxt = 0
  sent = 0
  answered = 0
  statuses = {}
  exhausted = 0
end

function delay()
  -- A connection whose thread has sent its whole share waits instead of sending again; the
  -- thread stops once every request of its share is answered (below).
  if nxt >= #requests then
    return 3600000
  end
  return 0
end

function request()
  nxt = nxt + 1
  if nxt > #requests then
    -- Only when a thread has more connections than requests: an identical retry of the last
    -- one (answered 200, stored once), never a new request.
    exhausted = exhausted + 1
    return requests[#requests]
  end
  sent = sent + 1
  return requests[nxt]
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  answered = answered + 1
  if answered >= #requests then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests_stats)
  local total = {}
  local sent_total, extra = 0, 0
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get("statuses")) do
      total[k] = (total[k] or 0) + v
    end
    sent_total = sent_total + thread:get("sent")
    extra = extra + thread:get("exhausted")
  end
  local parts = {}
  for k, v in pairs(total) do
    parts[#parts + 1] = string.format('"%s": %d', k, v)
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"duration_us": %d, "requests": %d, "sent": %d, "resent_after_end": %d, ' ..
    '"statuses": {%s}, "errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
    '"latency_p50_us": %d, "latency_p99_us": %d, "latency_max_us": %d}\n',
    summary.duration, summary.requests, sent_total, extra, table.concat(parts, ", "),
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
