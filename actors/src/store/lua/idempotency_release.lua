local c = redis.call('HMGET', KEYS[1], 'owner', 'state')
if c[1] == ARGV[1] and c[2] == 'running' and redis.call('PTTL', KEYS[1]) <= tonumber(ARGV[2]) then
  return redis.call('DEL', KEYS[1])
end
return 0
