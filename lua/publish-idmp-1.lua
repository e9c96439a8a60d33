-- Redis 8.6+: native idempotent XADD (IDMP) of one or more events to one stream, in a script to
-- tell a new entry from a repeat (the server returns the first entry's id for a repeated
-- (producer, iid)): an id above the stream's last entry before the XADD is new. The same rules as
-- publish-idempotent-n.lua: a repeat whose entry is still there, or was delivered to the group,
-- adds nothing; a repeat whose entry went before the group read it is published again under the
-- derived iid `<iid>#<that entry id>` (the server cannot be told to forget an iid; every publisher
-- derives the same one, so the new entry is still added once); and the backlog limit is checked
-- before each XADD (a repeat is known only after it, so at the limit a repeat too comes back
-- C.NO_ROOM and is retried by the caller).
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
--           C is the code table src/redis/scripts.ts prepends.
local stream = KEYS[1]
local group = ARGV[3]
local limit = tonumber(ARGV[4])
local streamType = redis.call('TYPE', stream)['ok']
if streamType ~= 'stream' and streamType ~= 'none' then
  return C.NOT_A_STREAM
end
local exists = streamType == 'stream'

local function cmpNum(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function cmpId(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  local c = cmpNum(ams, bms)
  if c ~= 0 then return c end
  return cmpNum(aseq, bseq)
end

local lastDelivered = false
if exists and group ~= '' then
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local name, last
    for j = 1, #g, 2 do
      if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'last-delivered-id' then last = g[j + 1] end
    end
    if name == group then lastDelivered = last end
  end
end

local function countUnread()
  if not exists then return 0 end
  local len = redis.call('XLEN', stream)
  if not lastDelivered then return len end
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
  if last == nil or cmpId(lastDelivered, last[1]) >= 0 then return 0 end
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
  if cmpId(lastDelivered, first[1]) < 0 then return len end
  local after = redis.call('XRANGE', stream, lastDelivered, '+', 'COUNT', limit + 1)
  local n = #after
  if n > 0 and after[1][1] == lastDelivered then n = n - 1 end
  if n > limit then n = limit end
  return n
end

-- More hops than this means entries of one job keep vanishing unread: refuse rather than loop.
local MAX_HOPS = 8
local unread = -1
local out = { 0, lastDelivered and 1 or 0, lastDelivered or '' }
for i = 5, #ARGV, 2 do
  local iid = ARGV[i]
  local id, code = '', nil
  local hops = 0
  while code == nil do
    if limit > 0 then
      if unread < 0 then unread = countUnread() end
      if unread >= limit then
        id, code = '', C.NO_ROOM
        break
      end
    end
    local last = exists and redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1] or nil
    id = redis.call('XADD', stream, 'IDMP', ARGV[1], iid, 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[i + 1])
    exists = true
    -- new: above the last entry before, and there (a repeat of a trimmed entry is neither)
    local present = #redis.call('XRANGE', stream, id, id) > 0
    if present and (last == nil or cmpId(id, last[1]) > 0) then
      code = hops > 0 and C.ADDED_OVER_STALE_MARKER or C.ADDED
      if unread >= 0 then unread = unread + 1 end
    elseif present then
      code = C.REPEAT_PRESENT
    elseif lastDelivered and cmpId(id, lastDelivered) <= 0 then
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
if limit > 0 and unread < 0 then unread = countUnread() end
out[1] = unread
return out
