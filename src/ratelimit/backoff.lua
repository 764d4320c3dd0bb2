-- The failed-login back-off of one account, on Redis's clock, shared by
-- every instance: the same rule as the in-process table
-- (auth::throttle::LoginThrottle). Checking and reserving are one step, so
-- concurrent attempts on any instances cannot all pass the check before
-- one of them is counted.
--
-- KEYS[1]  the account's hash: f = attempts counted as failures, b =
--          blocked until (milliseconds of Redis's clock).
-- ARGV[1]  'attempt' or 'success'
-- ARGV[2]  attempts without a wait (attempt only)
-- ARGV[3]  the longest wait in milliseconds (attempt only)
-- ARGV[4]  forget the account this many milliseconds after its last
--          attempt (attempt only): the key's TTL, so Redis holds only live
--          accounts.
--
-- Returns, for 'attempt', the wait left in milliseconds (> 0: refused,
-- nothing recorded) or 0 (let through, counted as a failure until a
-- 'success' forgets the account); 0 for 'success'.

if redis.replicate_commands then
  redis.replicate_commands()
end

if ARGV[1] == 'success' then
  redis.call('DEL', KEYS[1])
  return 0
end

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local blocked = tonumber(redis.call('HGET', KEYS[1], 'b') or '0') or 0
if blocked > now then
  return blocked - now
end

local free = tonumber(ARGV[2])
local max_delay = tonumber(ARGV[3])
local forget = tonumber(ARGV[4])
local failures = (tonumber(redis.call('HGET', KEYS[1], 'f') or '0') or 0) + 1
local delay = 0
if failures >= free then
  local exponent = math.min(failures - free, 30)
  delay = math.min(1000 * (2 ^ exponent), max_delay)
end
redis.call('HSET', KEYS[1], 'f', failures, 'b', string.format('%d', now + delay))
redis.call('PEXPIRE', KEYS[1], forget)
return 0
