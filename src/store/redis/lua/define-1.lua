-- Sets the limits of one key, keeping the level of every bucket whose limits
-- are unchanged (another process, or this one before a restart, defined it
-- already): a restart never refills a bucket. A new bucket starts full; a
-- changed one keeps its level, cut to its new capacity. Buckets the spec no
-- longer names go, unless a provider's headers taught them.
--
-- KEYS[1] the key's hash
-- ARGV[1] now in ms, or '' for Redis TIME
-- ARGV[2] the spec as JSON: { dims = [{ name, limit, window, cap, transit }], max = n or -1 }
-- ARGV[3] the channel to announce a change on; ARGV[4] the limit key's name; ARGV[5] this process's id
local hash = KEYS[1]
local now = now_of(ARGV[1])
local spec = cjson.decode(ARGV[2])
local old = load_dims(hash)
local dims = {}
local changed = false
for _, s in ipairs(spec.dims) do
  local b = find_dim(old, s.name)
  if b and b.limit == s.limit and b.window == s.window and b.cap == s.cap and b.transit == s.transit then
    b.learned = 0
  elseif b then
    refill(b, now)
    b.limit, b.window, b.cap, b.transit, b.learned = s.limit, s.window, s.cap, s.transit, 0
    b.level = math.min(b.level, b.cap * b.window)
    b.gen = redis.call('HINCRBY', hash, 'gen', 1)
    changed = true
  else
    b = { name = s.name, limit = s.limit, window = s.window, cap = s.cap, transit = s.transit,
      level = s.cap * s.window, at = now, gen = redis.call('HINCRBY', hash, 'gen', 1), learned = 0 }
    changed = true
  end
  dims[#dims + 1] = b
end
for _, b in ipairs(old) do
  if b.learned == 1 and not find_dim(dims, b.name) then
    dims[#dims + 1] = b
  elseif not find_dim(dims, b.name) then
    for _, f in ipairs(FIELDS) do redis.call('HDEL', hash, b.name .. '.' .. f) end
    changed = true
  end
end
save_dims(hash, dims)
local max = tostring(spec.max)
if spec.max < 0 then max = '' end
if (redis.call('HGET', hash, 'max') or '') ~= max then
  changed = true
  if max == '' then redis.call('HDEL', hash, 'max') else redis.call('HSET', hash, 'max', max) end
end
if changed then redis.call('PUBLISH', ARGV[3], cjson.encode({ type = 'changed', key = ARGV[4], from = ARGV[5] })) end
return state_of(hash, now, dims)
