-- Compare-and-pexpire: extends a lock only for the owner of its token. The server keeps the
-- clock (PEXPIRE), so hosts with skewed clocks agree on the expiry.
-- KEYS[1]  the lock key
-- ARGV[1]  the owner's token
-- ARGV[2]  the new time to live in milliseconds, counted from now on the server
-- Returns  1 extended; 0 not held (expired or never taken); -1 held by another token (refused)
local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
if current ~= ARGV[1] then
  return -1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
