-- Redis 8.6+: native idempotent XADD (IDMP) of one or more events to one stream, in a script to
-- tell a new entry from a repeat (the server returns the first entry's id for a repeated
-- (producer, iid)): an id above the stream's last entry before the XADD is new. The same rules as
-- publish-idempotent-n.lua: a repeat whose entry is still there, or was delivered to the group,
-- adds nothing; a repeat whose entry went before the group read it is published again under the
-- derived iid `<iid>#<that entry id>` (the server cannot be told to forget an iid; every publisher
-- derives the same one, so the new entry is still added once); and the backlog limit is checked
-- before each XADD (a repeat is known only after it, so at the limit a repeat too comes back
-- C.NO_ROOM and is retried by the caller).
-- Prelude: publish
-- KEYS[1]   the stream key
-- ARGV[1]   producer id
-- ARGV[2]   MAXLEN ~ threshold
-- ARGV[3]   the consumer group whose reads count as delivery ('' for none)
-- ARGV[4]   the backlog limit (0: no pacing)
-- ARGV[5..] pairs: idempotent id (iid), then the event as JSON
-- Returns   as publish-idempotent-n.lua: unread after the call, group exists (1/0), its
--           last-delivered-id, then entry id and code per event (C.ADDED,
--           C.ADDED_OVER_STALE_MARKER, C.REPEAT_PRESENT, C.REPEAT_DELIVERED, C.NO_ROOM or
--           C.IDMP_CHAIN_TOO_LONG); or C.NOT_A_STREAM alone (nothing written).
--           C is the code table src/redis/scripts.ts prepends, with lua/prelude/publish.lua.
local s = openStream(KEYS[1], ARGV[3], tonumber(ARGV[4]))
if not s then return C.NOT_A_STREAM end

-- More hops than this means entries of one job keep vanishing unread: refuse rather than loop.
local MAX_HOPS = 8
local out = replyOf(s)
for i = 5, #ARGV, 2 do
  local iid = ARGV[i]
  local id, code = '', nil
  local hops = 0
  while code == nil do
    if atLimit(s) then
      id, code = '', C.NO_ROOM
      break
    end
    local last = s.exists and redis.call('XREVRANGE', s.key, '+', '-', 'COUNT', 1)[1] or nil
    id = redis.call('XADD', s.key, 'IDMP', ARGV[1], iid, 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[i + 1])
    s.exists = true
    -- new: above the last entry before, and there (a repeat of a trimmed entry is neither)
    local present = #redis.call('XRANGE', s.key, id, id) > 0
    if present and (last == nil or cmpId(id, last[1]) > 0) then
      code = hops > 0 and C.ADDED_OVER_STALE_MARKER or C.ADDED
      added(s)
    elseif present then
      code = C.REPEAT_PRESENT
    elseif s.lastDelivered and cmpId(id, s.lastDelivered) <= 0 then
      code = C.REPEAT_DELIVERED
    else
      hops = hops + 1
      if hops > MAX_HOPS then
        id, code = '', C.IDMP_CHAIN_TOO_LONG
      else
        iid = ARGV[i] .. '#' .. id
      end
    end
  end
  out[#out + 1] = id
  out[#out + 1] = code
end
return finish(s, out)
