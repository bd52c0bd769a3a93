-- THE way jobs go back to their group: the batch's jobs that are not final and still belong
-- to it are queued again, in their original order, and the batch ends. Used for a batch that
-- never reached its agent (not enqueued), one its agent will not start (offline: taken
-- back), and one whose agent was lost (lease expired) or restarted (a new instance).
-- KEYS: agent, group, groups, batch
-- ARGV: batch_id, job key prefix, assigned status, running status, queued status,
--       error status, build member, the build's score in groups before the batch,
--       restore ('1': the batch never ran: attempts are given back and no attempt is
--       recorded; '0': the attempt counts and is recorded in the job's history), reason,
--       now (ISO), most history entries kept, most attempts, agent id,
--       then per job: job_id, its score in the group
-- A job whose attempts reached the most, on a batch that ran ('0'), ends `error` with the
-- reason instead (result as in records.Job). Returns {requeued job ids, ended job ids}.
-- Job keys from a prefix, as in form_batch.lua: single Redis instance only.
local agent_key, group_key, groups_key, batch_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local batch_id, job_prefix = ARGV[1], ARGV[2]
local assigned, running, queued, error_status = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local build, group_score, restore, reason = ARGV[7], ARGV[8], ARGV[9] == '1', ARGV[10]
local now, history_max, max_attempts, agent_id =
  ARGV[11], tonumber(ARGV[12]), tonumber(ARGV[13]), ARGV[14]
local instance_id = redis.call('HGET', batch_key, 'instance_id') or ''

local requeued, ended = {}, {}
for i = 15, #ARGV, 2 do
  local job_id, score = ARGV[i], ARGV[i + 1]
  local job_key = job_prefix .. job_id
  local job = redis.call('HMGET', job_key, 'status', 'batch_id', 'attempts', 'assigned_at',
    'started_at', 'history')
  if (job[1] == assigned or job[1] == running) and job[2] == batch_id then
    local attempts = tonumber(job[3]) or 1
    if restore then
      attempts = math.max(attempts - 1, 0)
    else
      local history = {}
      if job[6] and job[6] ~= '' then history = cjson.decode(job[6]) end
      table.insert(history, {agent_id = agent_id, batch_id = batch_id,
        instance_id = instance_id, assigned_at = job[4] or '', started_at = job[5] or '',
        ended_at = now, reason = reason})
      while #history > history_max do table.remove(history, 1) end
      redis.call('HSET', job_key, 'history', cjson.encode(history))
    end
    if not restore and attempts >= max_attempts then
      local result = {outcome = error_status, duration_s = 0, install_paid = false,
        install_s = 0, driver = '', simulated = false, reason = reason,
        log_tail = 'attempt ' .. attempts .. ' of ' .. max_attempts .. ' ended (' .. reason ..
          ') on agent ' .. agent_id .. ': no attempt left'}
      redis.call('HSET', job_key, 'status', error_status, 'finished_at', now,
        'result', cjson.encode(result))
      table.insert(ended, job_id)
    else
      redis.call('HSET', job_key, 'status', queued, 'assigned_agent', '', 'batch_id', '',
        'assigned_at', '', 'started_at', '', 'attempts', attempts)
      redis.call('ZADD', group_key, score, job_id)
      table.insert(requeued, job_id)
    end
  end
end
if #requeued > 0 then
  redis.call('ZADD', groups_key, 'LT', group_score, build)
end
if redis.call('HGET', agent_key, 'current_batch_id') == batch_id then
  redis.call('HSET', agent_key, 'current_batch_id', '')
end
redis.call('DEL', batch_key)
return {requeued, ended}
