local ids
if ARGV[1] == 'asc' then
  ids = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
else
  ids = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[3], ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))
end
local out = {}
for i = 1, #ids do
  out[i] = redis.call('HGET', ARGV[5] .. ids[i], 'json')
end
return {ids, out}
