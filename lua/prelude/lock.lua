-- The lock prelude: the owner check of the lock scripts (release-lock-1.lua, extend-lock-1.lua).
-- src/redis/scripts.ts prepends it, after the code table C, to every script whose header names it
-- in a `-- Prelude:` line. It defines functions only and runs no command of its own.
-- lockRefusal(key, token)  the lock key (the script's KEYS entry) and the owner's token; returns
--                          nil when the key holds `token` (the caller may act on the lock), or
--                          the script's answer: C.LOCK_NOT_HELD (expired or never taken),
--                          C.LOCK_NOT_OWNER (held by another token).
local function lockRefusal(key, token)
  local current = redis.call('GET', key)
  if not current then return C.LOCK_NOT_HELD end
  if current ~= token then return C.LOCK_NOT_OWNER end
  return nil
end
