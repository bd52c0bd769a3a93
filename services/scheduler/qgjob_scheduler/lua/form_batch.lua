-- Hand chosen pending jobs of one build to one free agent, atomically: the batch.
-- KEYS: agent, lease, group, groups, batch, queue expiry
-- ARGV: agent_id, org_id, app_version_id, build member, batch_id, now (ISO), now in ms,
--       job key prefix, queued status, assigned status, offline state, target,
--       lease timeout in ms, cancelled status, the result of a cancelled job (JSON),
--       then the job ids, in the order the agent runs them
-- Re-checks what the dispatcher saw: the agent is known, not offline, not bound, and its
-- lease is fresh on Redis TIME (its instance is the one the batch is bound to). Jobs no
-- longer in the group or no longer queued are skipped; so are, left in the group, a retried
-- job whose backoff has not passed (`not_before_ms`) and one that avoids this agent for a
-- while (`avoid_agent` until `avoid_until_ms`); a job whose cancel was asked leaves the
-- group `cancelled` (the cancel event does the same; whichever comes first). Each job of
-- the batch carries its attempt number and its own test timeout (`timeout_s`) to the agent. Returns the batch record as written
-- (HGETALL), or false when nothing was dispatched. Next to the fields of records.Batch the
-- record keeps what the requeue script needs: `job_scores` ({job_id: score in the group}
-- as JSON) and `group_score` (the build's score in groups before; empty if none).
-- The job keys are built from a prefix, not declared in KEYS: fine on one Redis instance;
-- Redis Cluster would refuse the script.
local agent_key, lease_key, group_key, groups_key, batch_key, expiry_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local agent_id, org_id, version, build, batch_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, now_ms, job_prefix = ARGV[6], ARGV[7], ARGV[8]
local queued, assigned, offline, target = ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local lease_timeout_ms = tonumber(ARGV[13])
local cancelled, cancel_result = ARGV[14], ARGV[15]

local agent = redis.call('HMGET', agent_key, 'agent_id', 'current_batch_id', 'state')
if not agent[1] or (agent[2] and agent[2] ~= '') or agent[3] == offline then
  return false
end
local lease = redis.call('HMGET', lease_key, 'instance_id', 'renewed_ms')
local time = redis.call('TIME')
local redis_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if not lease[1] or not lease[2] or redis_ms - tonumber(lease[2]) > lease_timeout_ms then
  return false
end

local group_score = redis.call('ZSCORE', groups_key, build)
local jobs, scores = {}, {}
for i = 16, #ARGV do
  local job_id = ARGV[i]
  local score = redis.call('ZSCORE', group_key, job_id)
  local job_key = job_prefix .. job_id
  local job = {}
  if score then
    job = redis.call('HMGET', job_key, 'status', 'org_id', 'test_path', 'priority',
      'attempts', 'timeout_s', 'not_before_ms', 'avoid_agent', 'avoid_until_ms',
      'cancel_requested_at')
  end
  local waits = score and job[1] == queued and (
    (tonumber(job[7] or '') or 0) > redis_ms or
    (job[8] == agent_id and (tonumber(job[9] or '') or 0) > redis_ms))
  if score and not waits then
    redis.call('ZREM', group_key, job_id)
    -- taken (or cancelled): its queue wait is over (a requeue starts a new one)
    redis.call('ZREM', expiry_key, job_id)
    if job[1] == queued and job[10] and job[10] ~= '' then
      redis.call('HSET', job_key, 'status', cancelled, 'finished_at', now,
        'result', cancel_result)
    elseif job[1] == queued then
      local attempt = (tonumber(job[5]) or 0) + 1
      redis.call('HSET', job_key, 'status', assigned, 'assigned_agent', agent_id,
        'batch_id', batch_id, 'attempts', attempt, 'assigned_at', now)
      table.insert(jobs, {job_id = job_id, org_id = job[2], test_path = job[3],
        priority = tonumber(job[4]), attempt = attempt, timeout_s = tonumber(job[6] or '')})
      scores[job_id] = score
    end
  end
end
if redis.call('ZCARD', group_key) == 0 then
  redis.call('ZREM', groups_key, build)
elseif #jobs > 0 then
  -- only part of the group was taken: it goes to the back, as if it re-arrived now
  redis.call('ZADD', groups_key, now_ms, build)
end
if #jobs == 0 then
  return false
end

redis.call('HSET', batch_key, 'batch_id', batch_id, 'agent_id', agent_id, 'target', target,
  'org_id', org_id, 'app_version_id', version, 'created_at', now, 'instance_id', lease[1],
  'jobs', cjson.encode(jobs), 'job_scores', cjson.encode(scores),
  'group_score', group_score or '', 'formed_ms', redis_ms)
redis.call('HSET', agent_key, 'current_batch_id', batch_id)
return redis.call('HGETALL', batch_key)
