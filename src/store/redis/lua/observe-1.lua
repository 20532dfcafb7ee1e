-- Takes in what a provider's headers said of a key's limits, for every
-- process: a dimension not known yet becomes a learned bucket (the stated
-- limit, holding what the provider's holds when full, starting at what
-- remains); a known bucket comes down to what remains, never up. Either is
-- announced, so that the other processes drop their slices and look again.
--
-- KEYS[1] the key's hash
-- ARGV[1] now in ms, or '' for Redis TIME
-- ARGV[2] what was seen, as JSON: [{ name, window, limit, remaining, resetMs, transit }] (-1: not said)
-- ARGV[3] the channel to announce a change on; ARGV[4] the limit key's name; ARGV[5] this process's id
local hash = KEYS[1]
local now = now_of(ARGV[1])
local dims = load_dims(hash)
local changed = false
for _, seen in ipairs(cjson.decode(ARGV[2])) do
  local b = find_dim(dims, seen.name)
  if not b and seen.limit > 0 then
    local full = seen.limit
    if seen.remaining >= 0 and seen.resetMs >= 0 then full = seen.remaining + seen.limit / seen.window * seen.resetMs end
    local cap = math.max(1, math.min(seen.limit, full))
    b = { name = seen.name, limit = seen.limit, window = seen.window, cap = cap, transit = seen.transit,
      level = cap * seen.window, at = now, gen = redis.call('HINCRBY', hash, 'gen', 1), learned = 1 }
    dims[#dims + 1] = b
    changed = true
  end
  if b and seen.remaining >= 0 then
    refill(b, now)
    if seen.remaining * b.window < b.level then
      b.level = seen.remaining * b.window
      changed = true
    end
  end
end
if changed then
  save_dims(hash, dims)
  redis.call('PUBLISH', ARGV[3], cjson.encode({ type = 'changed', key = ARGV[4], from = ARGV[5] }))
end
return state_of(hash, now, dims, { changed = changed })
