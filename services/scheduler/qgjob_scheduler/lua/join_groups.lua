-- Every queued job of one jobs.submitted joins its group, in the event's order, atomically.
-- KEYS: the arrival counter, the queue expiry zset, then per job, in the event's order:
--       job, group, groups
-- ARGV: queued status, grouping.PRIORITY_WEIGHT, the default queue wait in ms
--       (JOB_QUEUE_TTL_S), then per job: job_id, build member, priority, created_at in ms
-- Returns each job's status as found (false: no record). A queued job that is not in its
-- group yet takes the next arrival number and joins its group with the score
-- `grouping.group_score(priority, arrival)`; a redelivered event changes nothing. Its build
-- joins the target's groups scored by this creation time, unless it is there already (NX: a
-- waiting group keeps its place).
-- The job's queue wait expires its `queue_ttl_s` (else the default) after it joined, on Redis
-- TIME: the API's clock (created_at) is another host's and is never compared with Redis's.
-- Job hash fields read: status, queue_ttl_s.
local seq_key, expiry_key = KEYS[1], KEYS[2]
local queued, weight, default_ttl_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local statuses = {}
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
for i = 1, (#KEYS - 2) / 3 do
  local job_key, group_key, groups_key = KEYS[3 * i], KEYS[3 * i + 1], KEYS[3 * i + 2]
  local job_id, build = ARGV[4 * i], ARGV[4 * i + 1]
  local priority, created_ms = tonumber(ARGV[4 * i + 2]), ARGV[4 * i + 3]
  local job = redis.call('HMGET', job_key, 'status', 'queue_ttl_s')
  local status = job[1]
  if status == queued and not redis.call('ZSCORE', group_key, job_id) then
    local arrival = redis.call('INCR', seq_key)
    redis.call('ZADD', group_key, arrival - priority * weight, job_id)
    redis.call('ZADD', groups_key, 'NX', created_ms, build)
    local ttl_ms = default_ttl_ms
    local ttl_s = tonumber(job[2] or '')
    if ttl_s then ttl_ms = ttl_s * 1000 end
    redis.call('ZADD', expiry_key, 'NX', now_ms + ttl_ms, job_id)
  end
  statuses[i] = status
end
return statuses
