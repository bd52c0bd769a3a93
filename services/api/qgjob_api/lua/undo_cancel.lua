-- Take back the cancel marks one request set, when its event could not be published: only
-- marks that are still that request's (same requested_at and requested_by) are removed.
-- KEYS: the job hashes; ARGV[1]: requested_at; ARGV[2]: requested_by; ARGV[3], ARGV[4]: the
-- field names (cancel_requested_at, cancel_requested_by). Returns how many were removed.
local removed = 0
for _, key in ipairs(KEYS) do
  if redis.call('HGET', key, ARGV[3]) == ARGV[1] and redis.call('HGET', key, ARGV[4]) == ARGV[2] then
    redis.call('HSET', key, ARGV[3], '', ARGV[4], '')
    removed = removed + 1
  end
end
return removed
