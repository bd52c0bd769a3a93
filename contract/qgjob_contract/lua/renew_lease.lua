-- Renew an agent's lease, stamped with Redis TIME (never the agent's clock).
-- KEYS[1]: the lease hash (names.Keys.lease)
-- ARGV: instance_id, then the field names: instance, renewed, started, previous instance
-- A new instance of the agent (a restart under the same agent id) replaces the old one's
-- lease: `started` is reset and `previous` names the instance it replaced.
-- Returns Redis TIME in ms.
local lease_key, instance_id = KEYS[1], ARGV[1]
local f_instance, f_renewed, f_started, f_previous = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local current = redis.call('HGET', lease_key, f_instance)
if current ~= instance_id then
  redis.call('HSET', lease_key, f_instance, instance_id, f_started, now_ms,
    f_previous, current or '')
end
redis.call('HSET', lease_key, f_renewed, now_ms)
return now_ms
