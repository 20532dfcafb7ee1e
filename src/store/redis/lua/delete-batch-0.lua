-- Forgets every task of a batch (a batch started over). Returns how many went.
--
-- No KEYS: the prefix's (ARGV[1]) keys, as write-tasks-0.lua lays them out.
-- ARGV[1] prefix; ARGV[2] the batch id
local prefix = ARGV[1]
local batchKey = prefix .. 'batch:' .. ARGV[2]
local ids = redis.call('ZRANGE', batchKey, 0, -1)
for _, id in ipairs(ids) do
  redis.call('DEL', prefix .. 'task:' .. id)
  redis.call('ZREM', prefix .. 'tasks-open', id)
  redis.call('ZREM', prefix .. 'tasks-ended', id)
end
redis.call('DEL', batchKey)
return #ids
