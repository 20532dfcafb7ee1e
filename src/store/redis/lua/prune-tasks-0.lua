-- Forgets what ended before a time: records no longer running (created
-- before it) with the ended tasks of their batches, then ended tasks that
-- ended before it, except those of a batch still running. Nothing
-- unfinished is touched. Returns { tasks, records }.
--
-- No KEYS: the prefix's (ARGV[1]) keys, as write-tasks-0.lua and the store lay them out.
-- ARGV[1] prefix; ARGV[2] before (ms)
local prefix, before = ARGV[1], tonumber(ARGV[2])
local TERMINAL = { completed = true, failed = true, cancelled = true }
local tasks, records = 0, 0

local function forget(id)
  local key = prefix .. 'task:' .. id
  local batch = redis.call('HGET', key, 'batch')
  if batch and batch ~= '' then redis.call('ZREM', prefix .. 'batch:' .. batch, id) end
  redis.call('DEL', key)
  redis.call('ZREM', prefix .. 'tasks-ended', id)
  tasks = tasks + 1
end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', prefix .. 'records-done', '-inf', '(' .. ARGV[2])) do
  for _, task in ipairs(redis.call('ZRANGE', prefix .. 'batch:' .. id, 0, -1)) do
    if TERMINAL[redis.call('HGET', prefix .. 'task:' .. task, 'state') or ''] then forget(task) end
  end
  redis.call('DEL', prefix .. 'record:' .. id)
  redis.call('ZREM', prefix .. 'records-done', id)
  records = records + 1
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', prefix .. 'tasks-ended', '-inf', '(' .. ARGV[2])) do
  local batch = redis.call('HGET', prefix .. 'task:' .. id, 'batch') or ''
  if batch == '' or not redis.call('ZSCORE', prefix .. 'records-open:batch', batch) then forget(id) end
end
return cjson.encode({ tasks = tasks, records = records })
