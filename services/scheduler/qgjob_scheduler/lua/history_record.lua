-- Record one duration in a bounded history (qgjob_scheduler.history.record_*).
-- KEYS: the history hash, its index zset, and optionally a string of the recent runs of
--       ANY field (tests: the estimate for a test never seen)
-- ARGV: field (test path or app version), duration in seconds (as text), runs kept per
--       field, fields kept per hash, TTL in seconds, and with KEYS[3] the runs it keeps
-- The field's value is its recent durations, oldest first, space separated; the oldest run
-- beyond the limit is dropped. The index scores each field by Redis TIME (ms) of its last
-- record; past the cap, the least recently recorded fields leave both keys. Every key expires
-- after TTL without a record. Returns how many runs the field now keeps.
local hash, index = KEYS[1], KEYS[2]
local field, duration = ARGV[1], ARGV[2]
local keep, cap, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])

-- `old` (space separated runs, or false) with `duration` appended, at most `most` kept
local function appended(old, most)
  local values = {}
  if old then
    for value in string.gmatch(old, '%S+') do
      table.insert(values, value)
    end
  end
  table.insert(values, duration)
  while #values > most do
    table.remove(values, 1)
  end
  return values
end

local values = appended(redis.call('HGET', hash, field), keep)
redis.call('HSET', hash, field, table.concat(values, ' '))
if KEYS[3] then
  local recent = appended(redis.call('GET', KEYS[3]), tonumber(ARGV[6]))
  redis.call('SET', KEYS[3], table.concat(recent, ' '), 'EX', ttl)
end

local time = redis.call('TIME')
redis.call('ZADD', index, tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000), field)
local excess = redis.call('ZCARD', index) - cap
if excess > 0 then
  local oldest = redis.call('ZRANGE', index, 0, excess - 1)
  redis.call('HDEL', hash, unpack(oldest))
  redis.call('ZREMRANGEBYRANK', index, 0, excess - 1)
end
redis.call('EXPIRE', hash, ttl)
redis.call('EXPIRE', index, ttl)
return #values
