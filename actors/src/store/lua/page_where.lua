local nr = tonumber(ARGV[7])
local n, d, best = #KEYS - nr, 1, nil
for i = 1, n do
  local c = redis.call('ZCARD', KEYS[i])
  if best == nil or c < best then d, best = i, c end
end
local asc, min, max = ARGV[1] == 'asc', ARGV[2], ARGV[3]
local want, budget, seen = tonumber(ARGV[4]), tonumber(ARGV[6]), 0
local ids, ended = {}, 1
while #ids < want do
  local chunk = math.min(math.max(want - #ids, 100), budget - seen)
  if chunk <= 0 then ended = 0 break end
  local got
  if asc then
    got = redis.call('ZRANGEBYLEX', KEYS[d], min, max, 'LIMIT', 0, chunk)
  else
    got = redis.call('ZREVRANGEBYLEX', KEYS[d], max, min, 'LIMIT', 0, chunk)
  end
  seen = seen + #got
  for i = 1, #got do
    local id, keep = got[i], true
    for j = 1, n do
      if j ~= d and not redis.call('ZSCORE', KEYS[j], id) then keep = false break end
    end
    for r = 1, keep and nr or 0 do
      local score = tonumber(redis.call('ZSCORE', KEYS[n + r], id) or '')
      if not score or score < tonumber(ARGV[6 + 2 * r]) or score > tonumber(ARGV[7 + 2 * r]) then
        keep = false
        break
      end
    end
    if keep then
      ids[#ids + 1] = id
      if #ids >= want then break end
    end
  end
  if #got < chunk then break end
  if asc then min = '(' .. got[#got] else max = '(' .. got[#got] end
end
local out = {}
for i = 1, #ids do
  out[i] = redis.call('HGET', ARGV[5] .. ids[i], 'json')
end
return {ids, out, min, max, ended}
