local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #due do
  redis.call('ZREM', KEYS[1], due[i])
  redis.call('XADD', KEYS[2], '*', 'd', due[i])
end
return #due
