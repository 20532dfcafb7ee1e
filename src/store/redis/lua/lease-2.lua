-- One process's round trip for a key: gives back what it holds and did not
-- spend (or owes, when calls used more than they reserved), then leases a
-- slice of `units` calls of one cost on every bucket of the key, or none,
-- and slots for calls in flight. A slice is taken as one take of units x cost,
-- giving up the refill of transit + hold ms when the bucket is full (the slice
-- may be spent up to `hold` ms after it was leased). When fewer than `least`
-- calls fit, they are leased all the same if they will fit within `ahead` ms
-- (the bucket goes into debt, as a take then would have left it, and the slice
-- may be spent from that time on); otherwise nothing is leased and the
-- answer says how long until they fit.
--
-- KEYS[1] the key's hash
-- KEYS[2] the key's holders: process id -> "slots:expires at" (a dead process's slots come back when it expires)
-- ARGV[1] now in ms, or '' for Redis TIME
-- ARGV[2] this process's id
-- ARGV[3] hold: ms a slice may be spent after it was leased
-- ARGV[4] units wanted (0: give back only); ARGV[5] least units worth a slice
-- ARGV[6] the cost of one unit, as JSON: { <bucket name> = amount }
-- ARGV[7] what is given back, as JSON: { gen = n, amounts = { <bucket name> = amount } }: only to buckets of gen <= n
-- ARGV[8] slots wanted; ARGV[9] slots given back; ARGV[10] ms a holder's slots live without a round trip
-- ARGV[11] ahead: how far ahead a slice may be leased, in ms
-- ARGV[12] the channel to announce slots on; ARGV[13] the limit key's name
-- ARGV[14] '1' when the caller knows limits on the key: if Redis has none (lost in a restart without
--          persistence, flushed, evicted), nothing is leased and the answer says `missing`, so that the
--          caller defines them again rather than spend without limit
local hash, holders = KEYS[1], KEYS[2]
local now = now_of(ARGV[1])
local id, hold = ARGV[2], tonumber(ARGV[3])
local wanted, least = tonumber(ARGV[4]), tonumber(ARGV[5])
local unit = cjson.decode(ARGV[6])
local back = cjson.decode(ARGV[7])
if ARGV[14] == '1' and redis.call('HEXISTS', hash, 'dims') == 0 then
  return cjson.encode({ missing = true, now = num(now), dims = {} })
end
local dims = load_dims(hash)

for _, b in ipairs(dims) do
  refill(b, now)
  local amount = back.amounts[b.name]
  if amount and amount ~= 0 and b.gen <= back.gen then give(b, amount) end
end

local cooldown = tonumber(redis.call('HGET', hash, 'cooldown') or '0')
local granted, wait, reason, start = 0, 0, '', 0
if cooldown > now then
  wait, reason = cooldown - now, 'cooldown'
elseif wanted > 0 then
  granted = wanted
  -- A slice of `least` units must fit in a full bucket, or the wait would never end.
  least = math.min(least, wanted)
  -- Near full, a slice may use only what is left after the refill given up for transit + hold (see take).
  local function usable(b, cost)
    local room = b.cap * b.window - (b.transit + hold) * b.limit
    return math.max(room, cost * b.window)
  end
  for _, b in ipairs(dims) do
    local cost = unit[b.name] or 0
    if cost > 0 then least = math.min(least, math.max(1, math.floor(usable(b, cost) / (cost * b.window)))) end
  end
  for _, b in ipairs(dims) do
    local cost = unit[b.name] or 0
    if cost > 0 then
      local fit = math.floor(math.min(b.level, usable(b, cost)) / (cost * b.window))
      if fit < 1 and cost > b.cap and b.level >= b.cap * b.window then fit = 1 end
      granted = math.min(granted, fit)
    end
  end
  if granted < least then
    granted = 0
    for _, b in ipairs(dims) do
      local w = wait_for(b, least * (unit[b.name] or 0))
      if w > wait then wait, reason = w, b.name end
    end
    if wait <= tonumber(ARGV[11]) then
      granted, start = least, wait
      for _, b in ipairs(dims) do take(b, granted * (unit[b.name] or 0), hold) end
    end
  else
    for _, b in ipairs(dims) do take(b, granted * (unit[b.name] or 0), hold) end
  end
end
save_dims(hash, dims)

-- Slots for calls in flight, when the key limits them.
local slots = 0
local max = tonumber(redis.call('HGET', hash, 'max') or '-1')
local mine = 0
local used = 0
local all = redis.call('HGETALL', holders)
for i = 1, #all, 2 do
  local count, expires = string.match(all[i + 1], '([^:]+):([^:]+)')
  if tonumber(expires) <= now then
    redis.call('HDEL', holders, all[i])
  elseif all[i] == id then
    mine = tonumber(count)
  else
    used = used + tonumber(count)
  end
end
mine = math.max(0, mine - tonumber(ARGV[9]))
if max >= 0 then
  slots = math.max(0, math.min(tonumber(ARGV[8]), max - used - mine))
  mine = mine + slots
end
-- Slots given back are announced to processes waiting for one; a process refused one says so, so that
-- processes holding idle slots give them back.
if tonumber(ARGV[9]) > 0 then
  redis.call('PUBLISH', ARGV[12], cjson.encode({ type = 'slots', key = ARGV[13], from = id }))
end
if max >= 0 and slots < tonumber(ARGV[8]) then
  redis.call('PUBLISH', ARGV[12], cjson.encode({ type = 'wants-slots', key = ARGV[13], from = id }))
end
if mine > 0 then
  redis.call('HSET', holders, id, mine .. ':' .. num(now + tonumber(ARGV[10])))
else
  redis.call('HDEL', holders, id)
end
return state_of(hash, now, dims, { granted = granted, start = start, wait = wait, reason = reason, slots = slots,
  held = mine, gen = redis.call('HGET', hash, 'gen') or '0' })
