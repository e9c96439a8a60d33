-- Compare-and-delete: releases a lock only for the owner of its token.
-- Prelude: lock
-- KEYS[1]  the lock key
-- ARGV[1]  the owner's token (the value SET NX PX stored)
-- Returns  C.LOCK_DONE released; C.LOCK_NOT_HELD (expired or never taken); C.LOCK_NOT_OWNER held
--          by another token (refused). C is the code table src/redis/scripts.ts prepends, with
--          lua/prelude/lock.lua (lockRefusal).
local refused = lockRefusal(KEYS[1], ARGV[1])
if refused then return refused end
redis.call('DEL', KEYS[1])
return C.LOCK_DONE
