-- GCRA (the generic cell rate algorithm) for one bucket, on Redis's clock:
-- the same decisions as governor's GCRA in the in-process store.
--
-- KEYS[1]  the bucket. Its value is the theoretical arrival time (TAT) in
--          microseconds of Redis's clock: when the bucket is full again.
-- ARGV[1]  the emission interval T in whole microseconds (period / count)
-- ARGV[2]  the burst, the policy's count
--
-- Returns {allowed (1 or 0), remaining, reset in microseconds}: reset is the
-- time until the bucket is full again when allowed, and the time until a
-- retry can pass when refused.
--
-- Every number is a whole number of microseconds below 2^53, exact in Lua's
-- doubles; values go back to Redis through '%d' because Lua's own number
-- formatting would round a 16-digit time to 14 digits.

-- Scripts that read TIME and then write must be replicated by their
-- effects, the default since Redis 5; asked for explicitly for older ones.
if redis.replicate_commands then
  redis.replicate_commands()
end

local t = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tau = t * (burst - 1)

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

-- An absent (expired) bucket is a full one; a value that is not a number
-- cannot come from this script and is treated the same way.
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end

if now < tat - tau then
  return {0, 0, tat - tau - now}
end

local new_tat = tat + t
local remaining = math.floor((now + tau + t - new_tat) / t)
-- The TTL is the bucket's horizon: past new_tat the bucket is full, exactly
-- like an absent key, so Redis holds only the keys that still limit someone.
local horizon_ms = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', horizon_ms))
return {1, remaining, t * (burst - remaining)}
