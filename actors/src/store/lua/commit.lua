local t = cmsgpack.unpack(ARGV[1])
local p, last = 1, #t
local function n(i) return t[p + i] end
local function key(i) return KEYS[t[p + i]] end
local function val(i) return ARGV[t[p + i]] end
local function run(i)
  local f = t[p + i]
  return unpack(ARGV, f, f + t[p + i + 1] - 1)
end
local function rawframe(s)
  local len, b = #s, #s * 8 + 1
  return '\40\181\47\253\32' .. string.char(len, b % 256, math.floor(b / 256) % 256, math.floor(b / 65536)) .. s
end
local cmd_id = ''
local numbers = {}
local guards = {}
while p <= last do
  local o = t[p]
  if o == 'V' then
    local v = tonumber(redis.call('HGET', key(1), 'v') or '0')
    if v ~= n(2) then return {'conflict', key(1)} end
    p = p + 3
  elseif o == 'VP' then
    if #redis.call('XPENDING', key(1), val(2), val(3), val(3), 1) == 0 then return {'conflict', key(1)} end
    p = p + 4
  elseif o == 'O' then
    if redis.call('HGET', key(1), 'owner') ~= val(2) then return {'lost', key(1)} end
    p = p + 3
  elseif o == 'NX' then
    if redis.call('EXISTS', key(1)) == 1 then return {'conflict', key(1)} end
    p = p + 2
  elseif o == 'K' then
    local refused = key_check(key(1), n(2), val(3), val(4))
    if refused then return refused end
    p = p + 5
  elseif o == 'S' then
    numbers[#numbers + 1] = val(2) .. string.format('%06d', redis.call('INCR', key(1)))
    p = p + 3
  elseif o == 'T' then
    ARGV[n(1)] = table.concat(ARGV, numbers[n(2)], n(3), n(4))
    p = p + 5
  elseif o == 'TZ' then
    ARGV[n(1)] = ARGV[n(1)] .. rawframe(numbers[n(2)])
    p = p + 3
  elseif o == 'P' then
    local b = n(3)
    redis.call('HSET', key(1), 'v', t[p + 2], 'json', ARGV[b], unpack(ARGV, b + 1, b + n(4)))
    p = p + 5
  elseif o == 'H' then redis.call('HSET', key(1), run(2)) p = p + 4
  elseif o == 'Z' then redis.call('ZADD', key(1), t[p + 2], val(3)) p = p + 4
  elseif o == 'ZM' then
    local c, entries = n(2), {}
    for i = 1, c do
      entries[2 * i - 1] = t[p + 1 + 2 * i]
      entries[2 * i] = ARGV[t[p + 2 + 2 * i]]
    end
    redis.call('ZADD', key(1), unpack(entries))
    p = p + 3 + 2 * c
  elseif o == 'R' then redis.call('ZREM', key(1), val(2)) p = p + 3
  elseif o == 'X' then redis.call('XADD', key(1), '*', run(2)) p = p + 4
  elseif o == 'EV' then
    local kind = val(6)
    local e = redis.call('XADD', key(1), '*', 'type', kind, 'created', val(7),
      'object_id', val(8), 'json', val(5))
    -- The log's IDs only grow, so this one is above the type list's last; if the log was
    -- deleted and the clock went back it is not, and the event is only not listed by type
    -- (an error here would leave the log's entry written without the rest of the commit).
    redis.pcall('XADD', key(2), e, 'e', '1')
    local g = n(4)
    local ok = guards[g]
    if ok == nil then
      ok = redis.call('EXISTS', KEYS[g]) == 1
      guards[g] = ok
    end
    if ok then redis.call('XADD', key(3), '*', 'e', e, 'type', kind) end
    p = p + 9
  elseif o == 'E' then redis.call('PEXPIRE', key(1), t[p + 2]) p = p + 3
  elseif o == 'C' then
    cmd_id = redis.call('XADD', key(1), '*', run(4))
    redis.call('XREADGROUP', 'GROUP', val(2), val(3), 'COUNT', 1000, 'STREAMS', key(1), '>')
    p = p + 6
  elseif o == 'I' then redis.call('HINCRBY', key(1), val(2), t[p + 3]) p = p + 4
  elseif o == 'D' then redis.call('HDEL', key(1), val(2)) p = p + 3
  elseif o == 'N' then redis.call('HSETNX', key(1), val(2), val(3)) p = p + 4
  elseif o == 'HO' then
    local f, c = n(2), n(3)
    if redis.call('HSETNX', key(1), ARGV[f], ARGV[f + 1]) == 1 then
      if c > 2 then redis.call('HSET', key(1), unpack(ARGV, f + 2, f + c - 1)) end
      redis.call('ZADD', key(4), t[p + 5], val(6))
    end
    p = p + 7
  elseif o == 'IX' then
    local field, prefix, id, now = val(2), val(3), val(4), val(5)
    local was = redis.call('HGET', key(1), field)
    if was ~= now then
      local old = {}
      for w in string.gmatch(was or '', '%S+') do old[w] = true end
      for w in string.gmatch(now, '%S+') do
        if old[w] then old[w] = nil else redis.call('ZADD', prefix .. w, 0, id) end
      end
      for w in pairs(old) do redis.call('ZREM', prefix .. w, id) end
      redis.call('HSET', key(1), field, now)
    end
    p = p + 6
  elseif o == 'IR' then
    local field, set, id, now = val(2), val(3), val(4), val(5)
    if redis.call('HGET', key(1), field) ~= now then
      if now == '' then redis.call('ZREM', set, id) else redis.call('ZADD', set, now, id) end
      redis.call('HSET', key(1), field, now)
    end
    p = p + 6
  elseif o == 'IXN' then
    local prefix, id = val(3), val(4)
    for w in string.gmatch(val(5), '%S+') do redis.call('ZADD', prefix .. w, 0, id) end
    p = p + 6
  elseif o == 'IRN' then
    local now = val(5)
    if now ~= '' then redis.call('ZADD', val(3), now, val(4)) end
    p = p + 6
  elseif o == 'A' then
    redis.call('XACK', key(1), val(2), val(3))
    redis.call('XDEL', key(1), val(3))
    p = p + 4
  else
    return redis.error_reply('commit: unknown operation ' .. tostring(o))
  end
end
return {'ok', cmd_id, unpack(numbers)}
