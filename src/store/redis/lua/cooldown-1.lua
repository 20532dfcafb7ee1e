-- Admits nothing on a key for a while, in every process at once: the cooldown
-- is kept in Redis time (a shorter one never shortens a longer one) and
-- announced, so each process stops and drops the slices it holds.
--
-- KEYS[1] the key's hash
-- ARGV[1] now in ms, or '' for Redis TIME
-- ARGV[2] how long, in ms
-- ARGV[3] the channel to announce it on; ARGV[4] the limit key's name; ARGV[5] this process's id
local hash = KEYS[1]
local now = now_of(ARGV[1])
local untilMs = math.max(tonumber(redis.call('HGET', hash, 'cooldown') or '0'), now + tonumber(ARGV[2]))
redis.call('HSET', hash, 'cooldown', num(untilMs))
redis.call('PUBLISH', ARGV[3], cjson.encode({ type = 'cooldown', key = ARGV[4], from = ARGV[5], now = num(now), cooldown = num(untilMs) }))
return state_of(hash, now, load_dims(hash))
