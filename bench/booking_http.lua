-- wrk script for bench/booking.py: POST /api/v1/appointments, each request for another
-- patient and a schedule picked from the list, with its own Idempotency-Key; the answer
-- codes are counted per thread and printed with the latencies as one JSON line.
--   wrk -s booking_http.lua URL -- THREADS FIRST_PATIENT PATIENTS SCHEDULE,IDS TOKEN RUN
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  sent = 0
  codes = {}
  nthreads = tonumber(args[1])
  first = tonumber(args[2])
  count = tonumber(args[3])
  schedules = {}
  for s in string.gmatch(args[4], "%d+") do table.insert(schedules, tonumber(s)) end
  token = args[5]
  run = args[6]
end

function request()
  local k = id + sent * nthreads
  sent = sent + 1
  local body = string.format('{"schedule_id": %d, "patient_id": %d, "channel": "window"}',
    schedules[(k * 7919) % #schedules + 1], first + (k % count))
  return wrk.format("POST", "/api/v1/appointments", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = string.format("wrk-%s-%d-%d", run, id, sent)}, body)
end

function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("codes")) do total[code] = (total[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(total) do table.insert(parts, string.format('"%d": %d', code, n)) end
  io.write(string.format(
    '{"duration_us": %d, "requests": %d, "p50_us": %d, "p99_us": %d, "codes": {%s}}\n',
    summary.duration, summary.requests, latency:percentile(50), latency:percentile(99),
    table.concat(parts, ", ")))
end
