-- Apply writes only if the hashes they were computed from are unchanged since they were read:
-- the check and the writes run as one atomic step (the compare-and-set that replaces a
-- WATCH / MULTI / EXEC transaction, in one round trip instead of one per read and watch).
--
-- KEYS: every key the step checks or writes (so the script names no key of its own).
-- ARGV[1]: n, the number of checked keys: KEYS[1..n] are hashes;
-- ARGV[2]: a JSON array of n flat arrays [field, value, ...]: each checked hash exactly as it
--          was read (an empty array: the key did not exist);
-- ARGV[3]: a JSON array of writes, each [command, key index into KEYS, argument...], where
--          command is one of HSET, SADD, DEL, ZADD, ZREM (arguments are strings).
-- Returns 1 when the writes were applied, 0 when a checked hash had changed (nothing written:
-- the caller reads again and decides again).
local n = tonumber(ARGV[1])
local expected = cjson.decode(ARGV[2])
for i = 1, n do
  local current = redis.call('HGETALL', KEYS[i])
  local want = expected[i]
  if #current ~= #want then
    return 0
  end
  local read = {}
  for j = 1, #want, 2 do
    read[want[j]] = want[j + 1]
  end
  for j = 1, #current, 2 do
    if read[current[j]] ~= current[j + 1] then
      return 0
    end
  end
end
local allowed = { HSET = true, SADD = true, DEL = true, ZADD = true, ZREM = true }
for _, write in ipairs(cjson.decode(ARGV[3])) do
  local command = write[1]
  if not allowed[command] then
    return redis.error_reply('guarded_write: command not allowed: ' .. tostring(command))
  end
  redis.call(command, KEYS[write[2]], unpack(write, 3))
end
return 1
