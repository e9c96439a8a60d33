-- Compare-and-delete: releases a lock only for the owner of its token.
-- KEYS[1]  the lock key
-- ARGV[1]  the owner's token (the value SET NX PX stored)
-- Returns  1 released; 0 not held (expired or never taken); -1 held by another token (refused)
local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
if current ~= ARGV[1] then
  return -1
end
redis.call('DEL', KEYS[1])
return 1
