-- Compare-and-pexpire: extends a lock only for the owner of its token. The server keeps the
-- clock (PEXPIRE), so hosts with skewed clocks agree on the expiry.
-- Prelude: lock
-- KEYS[1]  the lock key
-- ARGV[1]  the owner's token
-- ARGV[2]  the new time to live in milliseconds, counted from now on the server
-- Returns  C.LOCK_DONE extended; C.LOCK_NOT_HELD (expired or never taken); C.LOCK_NOT_OWNER held
--          by another token (refused). C is the code table src/redis/scripts.ts prepends, with
--          lua/prelude/lock.lua (lockRefusal).
local refused = lockRefusal(KEYS[1], ARGV[1])
if refused then return refused end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return C.LOCK_DONE
