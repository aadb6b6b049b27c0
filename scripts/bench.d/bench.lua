-- wrk script for scripts/bench. One file for every scenario, chosen by
-- BENCH_SCENARIO; the summary goes to BENCH_OUT as one JSON object.
--   healthz  GET /healthz
--   me       GET /auth/me, Authorization: Bearer with the access tokens of
--            $BENCH_ACCESS_TOKENS in turn (one per prepared session, so a
--            server-side cache of verified tokens would not see one token only)
--   login    POST /auth/login as $BENCH_EMAIL / $BENCH_PASSWORD
--   refresh  POST /auth/refresh with a different live token on every request:
--            each thread takes its share of the lines of $BENCH_TOKENS (one
--            live refresh token per session), and every 200 hands back the
--            session's next token, which joins the end of that thread's queue.
--            No token is ever sent twice. An empty queue sends an unusable
--            token (a 401, counted as an error) rather than repeating one.

local scenario = os.getenv("BENCH_SCENARIO") or "healthz"
local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local queue, head, tail = {}, 1, 0
local json = { ["Content-Type"] = "application/json" }

function init(args)
   local file = (scenario == "refresh" and os.getenv("BENCH_TOKENS"))
      or (scenario == "me" and os.getenv("BENCH_ACCESS_TOKENS"))
   if file then
      local n = tonumber(os.getenv("BENCH_THREADS"))
      local i = 0
      for line in io.lines(file) do
         if line ~= "" then
            if i % n == tid then
               tail = tail + 1
               queue[tail] = line
            end
            i = i + 1
         end
      end
   end
end

local me_next = 0
local login_body = string.format(
   '{"email":"%s","password":"%s","refresh_token_in_body":true}',
   os.getenv("BENCH_EMAIL") or "", os.getenv("BENCH_PASSWORD") or "")

function request()
   if scenario == "me" then
      me_next = me_next % tail + 1
      return wrk.format("GET", "/auth/me", { ["Authorization"] = "Bearer " .. queue[me_next] })
   elseif scenario == "login" then
      return wrk.format("POST", "/auth/login", json, login_body)
   elseif scenario == "refresh" then
      local token = "pool-exhausted"
      if head <= tail then
         token = queue[head]
         queue[head] = nil
         head = head + 1
      end
      return wrk.format("POST", "/auth/refresh", json, '{"refresh_token":"' .. token .. '"}')
   else
      return wrk.format("GET", "/healthz")
   end
end

if scenario == "refresh" then
   function response(status, headers, body)
      if status == 200 then
         local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
         if token then
            tail = tail + 1
            queue[tail] = token
         end
      end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local f = assert(io.open(os.getenv("BENCH_OUT"), "w"))
   f:write(string.format(
      '{"scenario":"%s","requests":%d,"duration_us":%d,"errors_connect":%d,"errors_read":%d,' ..
      '"errors_write":%d,"errors_timeout":%d,"non_2xx":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
      '"max_us":%d,"mean_us":%.1f}\n',
      scenario, summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout,
      e.status, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
   f:close()
end
