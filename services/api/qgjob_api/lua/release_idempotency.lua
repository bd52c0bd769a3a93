-- Remove a pending Idempotency-Key marker, but only if it is still the one this request
-- wrote (a marker that expired and was taken by another request is not ours to remove).
-- KEYS[1]: the idempotency key; ARGV[1]: the marker's value as written.
-- Returns 1 when removed, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
