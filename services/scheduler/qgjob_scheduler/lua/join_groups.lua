-- Every queued job of one jobs.submitted joins its group, in the event's order, atomically.
-- KEYS: the arrival counter, then per job, in the event's order: job, group, groups
-- ARGV: queued status, grouping.PRIORITY_WEIGHT, then per job: job_id, build member,
--       priority, created_at in ms
-- Returns each job's status as found (false: no record). A queued job that is not in its
-- group yet takes the next arrival number and joins its group with the score
-- `grouping.group_score(priority, arrival)`; a redelivered event changes nothing. Its build
-- joins the target's groups scored by this creation time, unless it is there already (NX: a
-- waiting group keeps its place).
-- Job hash field read: status.
local seq_key, queued, weight = KEYS[1], ARGV[1], tonumber(ARGV[2])
local statuses = {}
for i = 1, (#KEYS - 1) / 3 do
  local job_key, group_key, groups_key = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local job_id, build = ARGV[4 * i - 1], ARGV[4 * i]
  local priority, created_ms = tonumber(ARGV[4 * i + 1]), ARGV[4 * i + 2]
  local status = redis.call('HGET', job_key, 'status')
  if status == queued and not redis.call('ZSCORE', group_key, job_id) then
    local arrival = redis.call('INCR', seq_key)
    redis.call('ZADD', group_key, arrival - priority * weight, job_id)
    redis.call('ZADD', groups_key, 'NX', created_ms, build)
  end
  statuses[i] = status
end
return statuses
