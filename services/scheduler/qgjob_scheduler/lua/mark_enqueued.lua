-- Mark a batch as enqueued, unless it is gone (another scheduler replica requeued it while
-- this one was enqueueing: its RQ job must then be withdrawn, not its record recreated).
-- KEYS[1]: the batch hash; ARGV[1]: the field name (dispatch.ENQUEUED)
-- Returns 1 when marked, 0 when the batch no longer exists.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], '1')
return 1
