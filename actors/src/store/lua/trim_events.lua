local ids = redis.call('ZRANGEBYLEX', KEYS[1], '-', '+', 'LIMIT', 0, tonumber(ARGV[4]))
local cutoff = tonumber(ARGV[3])
local n = 0
for i = 1, #ids do
  local rec = ARGV[1] .. ids[i]
  local f = redis.call('HMGET', rec, 'type', 'created', 'json')
  local t, created = f[1], tonumber(f[2])
  if f[3] then
    if not created then created = tonumber(string.match(f[3], '"created":(%d+)')) end
    if not t then t = string.match(f[3], '"type":"([^"]*)"}$') end
    if created and created >= cutoff then return {n, 1} end
  end
  if t then redis.call('ZREM', ARGV[2] .. t, ids[i]) end
  redis.call('DEL', rec)
  redis.call('ZREM', KEYS[1], ids[i])
  n = n + 1
end
return {n, 0}
