-- wrk script for bench/run.sh: every request carries a distinct
-- X-Forwarded-For IPv4 address, so each one is a new rate-limit key.
--
-- Usage: wrk ... -s bench/distinct_ips.lua URL -- TOTAL THREADS [MARKDIR]
--
--   TOTAL    requests to send in all (split evenly between the threads)
--   THREADS  the -t given to wrk
--   MARKDIR  optional folder: a thread that has sent its share stops and
--            writes MARKDIR/done.<id>, so that the caller can end wrk (with
--            SIGINT, which makes it print its summary) without waiting for
--            the whole -d duration.
--
-- The address of request n (counting from 0) of thread id is
-- (1 + id).(n >> 16 & 255).(n >> 8 & 255).(n & 255): thread id owns the /8
-- network 1+id, and n only grows, so no two requests of one run share an
-- address (up to 2^24 requests per thread, 125 threads). None of them is
-- 127.0.0.1, the trusted proxy.
--
-- Each thread sends its share plus a slack of 64 requests before it stops,
-- since the requests still in flight when it stops are never answered; the
-- caller checks wrk's request count against TOTAL.

local bit = require("bit")

local thread_count = 0

function setup(thread)
   thread:set("id", thread_count)
   thread_count = thread_count + 1
end

-- The main Lua state calls request() once before any init() (to check the
-- script), so everything has a default.
id = id or 0
local limit = math.huge
local markdir = nil
local sent = 0
local stopped = false
local prefix = 1

function init(args)
   local total = tonumber(args[1]) or 1000000
   local threads = tonumber(args[2]) or 1
   markdir = args[3]
   limit = math.ceil(total / threads) + 64
   prefix = 1 + id
   if prefix > 126 then
      error("distinct_ips.lua: at most 126 threads")
   end
   if limit >= 16777216 then
      error("distinct_ips.lua: at most 2^24 requests per thread")
   end
end

local function address(n)
   return string.format("%d.%d.%d.%d", prefix,
      bit.band(bit.rshift(n, 16), 255),
      bit.band(bit.rshift(n, 8), 255),
      bit.band(n, 255))
end

function request()
   local n = sent
   sent = sent + 1
   if sent >= limit and not stopped then
      stopped = true
      if markdir then
         local f = io.open(markdir .. "/done." .. id, "w")
         if f then
            f:write(tostring(sent), "\n")
            f:close()
         end
      end
      wrk.thread:stop()
   end
   return wrk.format(nil, nil, { ["X-Forwarded-For"] = address(n) })
end
