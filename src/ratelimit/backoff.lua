-- The failed-login back-off of one account name, on Redis's clock, shared
-- by every instance: the same rule as the in-process table
-- (auth::throttle::LoginThrottle).
--
-- KEYS[1]  the name's hash: f = consecutive failures, b = blocked until
--          (milliseconds of Redis's clock).
-- ARGV[1]  'check', 'failure' or 'success'
-- ARGV[2]  failures that cost nothing (failure only)
-- ARGV[3]  the longest wait in milliseconds (failure only)
-- ARGV[4]  forget the name this many milliseconds after its last failure
--          (failure only): the key's TTL, so Redis holds only live names.
--
-- Returns the wait in milliseconds: what is left of it (check), what this
-- failure imposes (failure), or 0 (success, which forgets the name).

if redis.replicate_commands then
  redis.replicate_commands()
end

local op = ARGV[1]
if op == 'success' then
  redis.call('DEL', KEYS[1])
  return 0
end

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

if op == 'check' then
  local blocked = tonumber(redis.call('HGET', KEYS[1], 'b') or '0') or 0
  if blocked > now then
    return blocked - now
  end
  return 0
end

local free = tonumber(ARGV[2])
local max_delay = tonumber(ARGV[3])
local forget = tonumber(ARGV[4])
local failures = (tonumber(redis.call('HGET', KEYS[1], 'f') or '0') or 0) + 1
local delay = 0
if failures > free then
  local exponent = math.min(failures - free - 1, 30)
  delay = math.min(1000 * (2 ^ exponent), max_delay)
end
redis.call('HSET', KEYS[1], 'f', failures, 'b', string.format('%d', now + delay))
redis.call('PEXPIRE', KEYS[1], forget)
return delay
