-- The publish prelude: what both publish scripts (publish-idempotent-n.lua, publish-idmp-1.lua) know of
-- the stream they add to: its entry ids, its consumer group's last-delivered-id and the group's
-- unread backlog. src/redis/scripts.ts prepends it, after the code table C, to every script whose
-- header names it in a `-- Prelude:` line. It defines functions only and runs no command of its own.
-- cmpId(a, b)              two stream entry ids `<ms>-<seq>`: -1, 0 or 1 as a is before, equal to
--                          or after b, compared exactly as decimal strings (a sequence may pass
--                          2^53, a Lua number's limit)
-- openStream(key, group, limit)
--                          the stream (the script's KEYS entry), the group whose reads count as
--                          delivery ('' for none) and the backlog limit (0: no pacing); returns its
--                          state { key, limit, exists, lastDelivered (false: no such group, or no
--                          stream), unread (-1: not counted yet) }, or nil when the key holds
--                          another type (the script returns C.NOT_A_STREAM, nothing written)
-- atLimit(s)               true when pacing is on and the group's unread entries are at the limit
--                          (counted on first use, then kept up to date by added)
-- added(s)                 after an XADD that added a new entry: one more unread
-- replyOf(s)               the reply's head: unread (filled in by finish), the group exists (1/0),
--                          its last-delivered-id (''); the script appends two items per event
-- finish(s, out)           the reply with the unread count after the call (counted up to the limit;
--                          -1 when there is no limit)

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

local function openStream(key, group, limit)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'stream' and t ~= 'none' then return nil end
  local s = { key = key, limit = limit, exists = t == 'stream', lastDelivered = false, unread = -1 }
  if s.exists and group ~= '' then
    for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
      local name, last
      for j = 1, #g, 2 do
        if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'last-delivered-id' then last = g[j + 1] end
      end
      if name == group then s.lastDelivered = last end
    end
  end
  return s
end

-- Entries after the group's last-delivered-id (every entry when there is no group), counted up to
-- the limit (cost: that many entries).
local function countUnread(s)
  if not s.exists then return 0 end
  local len = redis.call('XLEN', s.key)
  if not s.lastDelivered then return len end
  local last = redis.call('XREVRANGE', s.key, '+', '-', 'COUNT', 1)[1]
  if last == nil or cmpId(s.lastDelivered, last[1]) >= 0 then return 0 end
  local first = redis.call('XRANGE', s.key, '-', '+', 'COUNT', 1)[1]
  if cmpId(s.lastDelivered, first[1]) < 0 then return len end
  -- inclusive start (exclusive ranges need Redis 6.2): drop the delivered entry itself
  local after = redis.call('XRANGE', s.key, s.lastDelivered, '+', 'COUNT', s.limit + 1)
  local n = #after
  if n > 0 and after[1][1] == s.lastDelivered then n = n - 1 end
  if n > s.limit then n = s.limit end
  return n
end

local function atLimit(s)
  if s.limit <= 0 then return false end
  if s.unread < 0 then s.unread = countUnread(s) end
  return s.unread >= s.limit
end

local function added(s)
  s.exists = true
  if s.unread >= 0 then s.unread = s.unread + 1 end
end

local function replyOf(s)
  return { -1, s.lastDelivered and 1 or 0, s.lastDelivered or '' }
end

local function finish(s, out)
  if s.limit > 0 and s.unread < 0 then s.unread = countUnread(s) end
  out[1] = s.unread
  return out
end
