-- THE way jobs go back to their group: jobs of a batch that are not final and still belong
-- to it are queued again (or end, as decided for each), in their original order. Used for a
-- batch that never reached its agent (not enqueued), one its agent will not start (offline:
-- taken back), one whose agent was lost (lease expired) or restarted (a new instance), and
-- for single jobs of a running batch whose attempt ended in a retried outcome (an
-- infrastructure error, a failed test with reruns left: `retry.decide`).
-- KEYS: agent, group, groups, batch, queue expiry
-- ARGV: batch_id, job key prefix, assigned status, running status, queued status,
--       cancelled status, build member, the build's score in groups before the batch,
--       restore ('1': the batch never ran: attempts are given back and no attempt is
--       recorded; '0': the attempt counts and is recorded in the job's history), now (ISO),
--       most history entries kept, agent id, end the batch ('1': it is over, the agent is
--       freed; '0': only these jobs leave it, the agent goes on with the rest),
--       the default queue wait in ms (JOB_QUEUE_TTL_S),
--       then per job: job_id, its score in the group, whether it ends ('1') or goes back, delay
--       in ms before it may be dispatched again, the agent it avoids ('' none), how long
--       after the delay it avoids it (ms), the attempt's outcome, its reason, the
--       result to store when it ends (JSON; '' builds an error result from the reason),
--       and when the attempt finished (ISO, as its agent reported it; '' = now)
-- Whatever the action, a job whose cancel was asked (`cancel_requested_at`) ends
-- `cancelled` instead of going back. Requeued jobs are eligible again at Redis TIME +
-- delay (`not_before_ms`), avoid the agent until `avoid_until_ms`, and their queue wait
-- starts again (queue expiry zset). Returns {requeued job ids, ended job ids}.
-- Job keys from a prefix, as in form_batch.lua: single Redis instance only.
local agent_key, group_key, groups_key, batch_key, expiry_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local batch_id, job_prefix = ARGV[1], ARGV[2]
local assigned, running, queued, cancelled = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local build, group_score, restore = ARGV[7], ARGV[8], ARGV[9] == '1'
local now, history_max, agent_id = ARGV[10], tonumber(ARGV[11]), ARGV[12]
local end_batch, default_ttl_ms = ARGV[13] == '1', tonumber(ARGV[14])
local instance_id = redis.call('HGET', batch_key, 'instance_id') or ''
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local requeued, ended = {}, {}
for i = 15, #ARGV, 10 do
  local job_id, score, ends = ARGV[i], ARGV[i + 1], ARGV[i + 2] == '1'
  local delay_ms, avoid, avoid_ms = tonumber(ARGV[i + 3]), ARGV[i + 4], tonumber(ARGV[i + 5])
  local outcome, reason, result = ARGV[i + 6], ARGV[i + 7], ARGV[i + 8]
  local finished = ARGV[i + 9]
  if finished == '' then finished = now end
  local job_key = job_prefix .. job_id
  local job = redis.call('HMGET', job_key, 'status', 'batch_id', 'attempts', 'assigned_at',
    'started_at', 'history', 'cancel_requested_at', 'cancel_requested_by', 'queue_ttl_s')
  if (job[1] == assigned or job[1] == running) and job[2] == batch_id then
    local attempts = tonumber(job[3]) or 1
    local cancel_at = job[7] or ''
    if restore then
      attempts = math.max(attempts - 1, 0)
      ends = false
    else
      local history = {}
      if job[6] and job[6] ~= '' then history = cjson.decode(job[6]) end
      table.insert(history, {attempt = attempts, agent_id = agent_id, batch_id = batch_id,
        instance_id = instance_id, assigned_at = job[4] or '', started_at = job[5] or '',
        finished_at = finished, outcome = outcome, reason = reason,
        retried = not ends and cancel_at == ''})
      while #history > history_max do table.remove(history, 1) end
      redis.call('HSET', job_key, 'history', cjson.encode(history))
    end
    if cancel_at ~= '' then
      local by = job[8] or ''
      redis.call('HSET', job_key, 'status', cancelled, 'finished_at', now, 'result',
        cjson.encode({outcome = cancelled, duration_s = 0, install_paid = false,
          install_s = 0, driver = '', simulated = false, reason = cancelled,
          log_tail = 'cancelled by ' .. by .. ' at ' .. cancel_at ..
            ' before another attempt'}))
      redis.call('ZREM', expiry_key, job_id)
      table.insert(ended, job_id)
    elseif ends then
      if result == '' then
        result = cjson.encode({outcome = outcome, duration_s = 0, install_paid = false,
          install_s = 0, driver = '', simulated = false, reason = reason,
          log_tail = 'attempt ' .. attempts .. ' ended (' .. reason .. ') on agent ' ..
            agent_id .. ': no attempt left'})
      end
      redis.call('HSET', job_key, 'status', outcome, 'finished_at', finished, 'result', result)
      table.insert(ended, job_id)
    else
      local ttl_ms = default_ttl_ms
      local ttl_s = tonumber(job[9] or '')
      if ttl_s then ttl_ms = ttl_s * 1000 end
      local not_before, avoid_until = '', ''
      if delay_ms > 0 then not_before = now_ms + delay_ms end
      if avoid ~= '' then avoid_until = now_ms + delay_ms + avoid_ms end
      redis.call('HSET', job_key, 'status', queued, 'assigned_agent', '', 'batch_id', '',
        'assigned_at', '', 'started_at', '', 'attempts', attempts,
        'not_before_ms', not_before, 'avoid_agent', avoid, 'avoid_until_ms', avoid_until)
      redis.call('ZADD', group_key, score, job_id)
      -- the queue wait starts once the backoff is over (a backoff never expires a job)
      redis.call('ZADD', expiry_key, now_ms + delay_ms + ttl_ms, job_id)
      table.insert(requeued, job_id)
    end
  end
end
if #requeued > 0 then
  redis.call('ZADD', groups_key, 'LT', group_score, build)
end
if end_batch then
  if redis.call('HGET', agent_key, 'current_batch_id') == batch_id then
    redis.call('HSET', agent_key, 'current_batch_id', '')
  end
  redis.call('DEL', batch_key)
end
return {requeued, ended}
