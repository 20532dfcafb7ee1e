-- Shared by every limiter script (prepended to each): the token bucket of
-- src/limits/token-bucket.ts in Lua, and a key's buckets as they lie in its hash.
--
-- A bucket's level is kept in units of 1/window of a token, so a limit of L
-- per window refills exactly L units per millisecond and every value stays a
-- whole number: the same arithmetic as in memory, to the unit.
--
-- The hash of a limit key holds `gen` (a counter: each bucket made takes the
-- next value), `cooldown` (Redis ms), `dims` (the bucket names, comma-separated),
-- `max` (calls in flight at once; absent: no limit), and for each bucket <name>.limit,
-- .window, .cap, .transit, .level, .at, .gen and .learned.

local FIELDS = { 'limit', 'window', 'cap', 'transit', 'level', 'at', 'gen', 'learned' }

local function num(value)
  return string.format('%.17g', value)
end

-- Redis TIME in ms when ARGV says '' (the default), else the caller's time.
local function now_of(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function refill(b, now)
  if now > b.at then
    b.level = math.min(b.cap * b.window, b.level + (now - b.at) * b.limit)
    b.at = now
  end
end

-- Milliseconds until `cost` fits (0: now), rounded up; a cost above capacity needs a full bucket.
local function wait_for(b, cost)
  local deficit = math.min(cost, b.cap) * b.window - b.level
  if deficit <= 0 then return 0 end
  return math.ceil(deficit / b.limit)
end

-- Takes `cost` from a refilled bucket it fits in. Taking from a full bucket first
-- gives up the refill of transit + hold ms: the provider's bucket, full too, would
-- not refill while the call (or the slice it comes from) is on its way.
local function take(b, cost, hold)
  local ceiling = b.cap * b.window - (b.transit + hold) * b.limit
  local before = math.min(b.level, math.max(ceiling, math.min(cost, b.cap) * b.window))
  b.level = before - cost * b.window
end

local function give(b, amount)
  b.level = math.min(b.cap * b.window, b.level + amount * b.window)
end

local function dim_names(hash)
  local names = {}
  local listed = redis.call('HGET', hash, 'dims')
  if listed and listed ~= '' then
    for name in string.gmatch(listed, '[^,]+') do names[#names + 1] = name end
  end
  return names
end

local function load_dims(hash)
  local dims = {}
  for _, name in ipairs(dim_names(hash)) do
    local fields = {}
    for i, f in ipairs(FIELDS) do fields[i] = name .. '.' .. f end
    local v = redis.call('HMGET', hash, unpack(fields))
    dims[#dims + 1] = {
      name = name, limit = tonumber(v[1]), window = tonumber(v[2]), cap = tonumber(v[3]),
      transit = tonumber(v[4]), level = tonumber(v[5]), at = tonumber(v[6]), gen = tonumber(v[7]),
      learned = tonumber(v[8]),
    }
  end
  return dims
end

local function save_dims(hash, dims)
  local names = {}
  local args = {}
  for _, b in ipairs(dims) do
    names[#names + 1] = b.name
    for _, f in ipairs(FIELDS) do
      args[#args + 1] = b.name .. '.' .. f
      args[#args + 1] = num(b[f])
    end
  end
  args[#args + 1] = 'dims'
  args[#args + 1] = table.concat(names, ',')
  redis.call('HSET', hash, unpack(args))
end

local function find_dim(dims, name)
  for _, b in ipairs(dims) do
    if b.name == name then return b end
  end
  return nil
end

-- What every script answers: the time it ran at, the cooldown, the limit on calls
-- in flight and each bucket (numbers as exact decimal strings; cjson would round them).
local function state_of(hash, now, dims, extra)
  local out = { now = num(now), cooldown = redis.call('HGET', hash, 'cooldown') or '0',
    max = redis.call('HGET', hash, 'max') or '', dims = {} }
  for i, b in ipairs(dims) do
    local row = {}
    for _, f in ipairs(FIELDS) do row[f] = num(b[f]) end
    row.name = b.name
    out.dims[i] = row
  end
  for k, v in pairs(extra or {}) do out[k] = v end
  return cjson.encode(out)
end
