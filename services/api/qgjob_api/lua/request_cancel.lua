-- Ask for the cancel of jobs that are not final yet, atomically per job: a job that reaches
-- a final status concurrently is either final here (left unchanged) or marked before it
-- got there (the scheduler then finds the mark on a final job and does nothing).
-- KEYS: the job hashes.
-- ARGV[1]: requested_at; ARGV[2]: requested_by; ARGV[3], ARGV[4]: the field names
-- (cancel_requested_at, cancel_requested_by); ARGV[5..]: the final statuses.
-- Returns one reply per key: {0} no such job; {1, status} marked now; {2, status} already
-- asked before (kept as first asked); {3, status} already final (nothing changed).
local final = {}
for i = 5, #ARGV do
  final[ARGV[i]] = true
end
local replies = {}
for i, key in ipairs(KEYS) do
  local status = redis.call('HGET', key, 'status')
  if not status then
    replies[i] = {0}
  elseif final[status] then
    replies[i] = {3, status}
  elseif (redis.call('HGET', key, ARGV[3]) or '') ~= '' then
    replies[i] = {2, status}
  else
    redis.call('HSET', key, ARGV[3], ARGV[1], ARGV[4], ARGV[2])
    replies[i] = {1, status}
  end
end
return replies
