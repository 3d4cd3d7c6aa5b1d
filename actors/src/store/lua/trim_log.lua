local cutoff, most = tonumber(ARGV[2]), tonumber(ARGV[3])
local gone = {}
local reached = 0
local from = '-'
-- From the head in steps of 50: most sweeps find the first entry inside the period and read
-- no further.
while reached == 0 and #gone < most do
  local entries = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', math.min(50, most - #gone))
  if #entries == 0 then break end
  for i = 1, #entries do
    local id, f = entries[i][1], entries[i][2]
    local kind, created
    for j = 1, #f, 2 do
      local name = f[j]
      if name == 'type' or name == 't' then kind = f[j + 1]
      elseif name == 'created' or name == 'c' then created = tonumber(f[j + 1]) end
    end
    if created and created >= cutoff then reached = 1 break end
    if kind then redis.call('XDEL', ARGV[1] .. kind, id) end
    gone[#gone + 1] = id
    from = '(' .. id
  end
  if #entries < 50 then break end
end
if #gone > 0 then
  redis.call('XDEL', KEYS[1], unpack(gone))
  redis.call('HDEL', KEYS[2], unpack(gone))
end
return {#gone, reached}
