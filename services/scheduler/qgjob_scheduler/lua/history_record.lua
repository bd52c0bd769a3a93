-- Record one duration in a bounded history (qgjob_scheduler.history.record_*).
-- KEYS: the history hash, its index zset
-- ARGV: field (test path or app version), duration in seconds (as text), runs kept per
--       field, fields kept per hash, TTL in seconds
-- The field's value is its recent durations, oldest first, space separated; the oldest run
-- beyond the limit is dropped. The index scores each field by Redis TIME (ms) of its last
-- record; past the cap, the least recently recorded fields leave both keys. Both keys expire
-- after TTL without a record. Returns how many runs the field now keeps.
local hash, index = KEYS[1], KEYS[2]
local field, duration = ARGV[1], ARGV[2]
local keep, cap, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])

local values = {}
local old = redis.call('HGET', hash, field)
if old then
  for value in string.gmatch(old, '%S+') do
    table.insert(values, value)
  end
end
table.insert(values, duration)
while #values > keep do
  table.remove(values, 1)
end
redis.call('HSET', hash, field, table.concat(values, ' '))

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
