-- Writes task rows in one step: a row is refused when its stored task has
-- ended (an ended task never changes) or is processing under a live lease
-- another attempt holds (so a result is committed only by the attempt that
-- holds the task); every other row is stored with its indexes.
--
-- No KEYS: the keys are the prefix's (ARGV[1]) task:<id>, tasks-open (ZSET,
-- seq), tasks-ended (ZSET, ended at) and batch:<id> (ZSET, line).
-- ARGV[1] prefix; ARGV[2] now (ms); then 9 values per row: id, state,
-- lease attempt ('' none), lease until, seq, batch id ('' none), line, ended at ('' none), row JSON.
local prefix, now = ARGV[1], tonumber(ARGV[2])
local TERMINAL = { completed = true, failed = true, cancelled = true }
local ended, leased = {}, {}
for i = 3, #ARGV, 9 do
  local id, state, lease, leaseUntil = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local seq, batch, line, endedAt, json = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8]
  local key = prefix .. 'task:' .. id
  local stored = redis.call('HMGET', key, 'state', 'lease', 'leaseUntil')
  if stored[1] and TERMINAL[stored[1]] then
    ended[#ended + 1] = id
  elseif stored[1] == 'processing' and stored[2] and stored[2] ~= '' and tonumber(stored[3] or '0') > now
      and stored[2] ~= lease then
    leased[#leased + 1] = id
  else
    redis.call('HSET', key, 'state', state, 'lease', lease, 'leaseUntil', leaseUntil, 'batch', batch, 'row', json)
    if TERMINAL[state] then
      redis.call('ZREM', prefix .. 'tasks-open', id)
      redis.call('ZADD', prefix .. 'tasks-ended', tonumber(endedAt ~= '' and endedAt or ARGV[2]), id)
    else
      redis.call('ZADD', prefix .. 'tasks-open', tonumber(seq), id)
    end
    if batch ~= '' then redis.call('ZADD', prefix .. 'batch:' .. batch, tonumber(line), id) end
  end
end
return cjson.encode({ ended = ended, leased = leased })
