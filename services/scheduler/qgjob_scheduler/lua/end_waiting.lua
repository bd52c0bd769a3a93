-- End a job that waits for an agent, atomically: a cancel, or a queue-wait expiry.
-- KEYS: job, group, groups, queue expiry
-- ARGV: job_id, build member, queued status, assigned status, the final status, finished_at
--       (ISO), the result (JSON), '1' for an expiry ('0': a cancel), cancel requested_at,
--       cancel requested_by
-- A queued job leaves its group (and the build leaves the target's groups when it was the
-- last) and takes the final status. A cancel also ends an `assigned` job (its agent has not
-- started it: it skips a job whose cancel was asked) and records who asked, if the record
-- does not say yet. An expiry applies only while the job's entry in the expiry zset is due
-- on Redis TIME (a requeue moves it later); the entry of a job no longer queued is dropped.
-- Returns the status the job had (false: no record; '': an expiry not due).
local job_key, group_key, groups_key, expiry_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local job_id, build, queued, assigned = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local final, finished_at, result, expire = ARGV[5], ARGV[6], ARGV[7], ARGV[8] == '1'
local requested_at, requested_by = ARGV[9], ARGV[10]

local status = redis.call('HGET', job_key, 'status')
if not status then
  redis.call('ZREM', expiry_key, job_id)
  return false
end
if expire then
  local due = redis.call('ZSCORE', expiry_key, job_id)
  local time = redis.call('TIME')
  local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  if not due or tonumber(due) > now_ms then
    return ''
  end
  if status ~= queued then
    redis.call('ZREM', expiry_key, job_id)
    return status
  end
end
if status == queued or (not expire and status == assigned) then
  if status == queued then
    redis.call('ZREM', group_key, job_id)
    if redis.call('ZCARD', group_key) == 0 then
      redis.call('ZREM', groups_key, build)
    end
  end
  redis.call('HSET', job_key, 'status', final, 'finished_at', finished_at, 'result', result)
  redis.call('ZREM', expiry_key, job_id)
  if not expire then
    local asked = redis.call('HMGET', job_key, 'cancel_requested_at', 'cancel_requested_by')
    if not asked[1] or asked[1] == '' then
      redis.call('HSET', job_key, 'cancel_requested_at', requested_at)
    end
    if not asked[2] or asked[2] == '' then
      redis.call('HSET', job_key, 'cancel_requested_by', requested_by)
    end
  end
end
return status
