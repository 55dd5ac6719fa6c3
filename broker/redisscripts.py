"""The Lua scripts the Redis nonce store runs inside Redis (see :mod:`broker.redisstore`), each
one atomic.

Keys (``<id>`` is a key id, a hash of the API key; ``<token>`` a random lease or waiter token):

=================================  ==========================================================
``krakenwatch:lock:<id>``          the lease: the holder's token, with an expiry
``krakenwatch:nonce:<id>``         the record: high-water mark, unit, hold-until
``krakenwatch:queue:<id>``         the waiters, a sorted set by arrival (a sequence number)
``krakenwatch:queue-seq:<id>``     that sequence
``krakenwatch:waiter:<token>``     a waiter's presence (expires when it stops looking)
``krakenwatch:wake:<token>``       a list a waiter blocks on; the releasing holder pushes to it
``krakenwatch:store-id``           the marker: ``<random>:<Redis time ms>``, made when missing
``krakenwatch:primary``            with Sentinels: the primary's replication id and the Redis
                                   time (ms) it was first seen replacing another (0: never)
``krakenwatch:lease-max``          the longest lease (ms) taken in the last day: how long a
                                   holder lost in a failover may still have a request in flight
=================================  ==========================================================

Nonces are compared as decimal strings: Lua's numbers lose precision above 2^53, below a
nanosecond nonce.
"""

__all__ = ["ACQUIRE", "LEAVE", "RELEASE", "RENEW", "WRITE"]

#: KEYS: lock, store marker, queue, queue sequence, my waiter key, primary record, longest lease;
#: ARGV: token, lease ms, a new marker id, waiter ttl ms, waiter key prefix, '1' to watch the
#: primary. Returns {got, marker, created, redis time ms, when this primary replaced another
#: (ms, 0: never), the longest lease (ms)}. A failover promotes a replica, which takes a new
#: replication id: the first acquire on it stamps the change; so does one that finds the store
#: in use but no primary record (lost in a failover, or a store used before without Sentinel).
#: An acquire retried after its answer was lost finds its own token holding the lock: it has it.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local marker = redis.call('GET', KEYS[2])
local created = 0
if not marker then
  marker = ARGV[3] .. ':' .. now
  redis.call('SET', KEYS[2], marker)
  created = 1
end
local changed = 0
if ARGV[6] == '1' then
  local id = string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)')
  if not id then return redis.error_reply('KWINFO INFO replication names no master_replid') end
  local known = redis.call('GET', KEYS[6])
  local was, at = nil, '0'
  if known then was, at = string.match(known, '^(%w+):(%d+)$') end
  if not known and created == 1 then
    redis.call('SET', KEYS[6], id .. ':0')
  elseif was ~= id then
    changed = now
    redis.call('SET', KEYS[6], id .. ':' .. now)
  else
    changed = tonumber(at)
  end
end
local longest = tonumber(redis.call('GET', KEYS[7]) or '0')
if tonumber(ARGV[2]) > longest then
  longest = tonumber(ARGV[2])
  redis.call('SET', KEYS[7], ARGV[2], 'PX', 86400000)
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('DEL', KEYS[5])
  return {1, marker, created, now, changed, longest}
end
while true do
  local head = redis.call('ZRANGE', KEYS[3], 0, 0)
  if #head == 0 or head[1] == ARGV[1] or redis.call('EXISTS', ARGV[5] .. head[1]) == 1 then
    break
  end
  redis.call('ZREM', KEYS[3], head[1])
end
local head = redis.call('ZRANGE', KEYS[3], 0, 0)
if (#head == 0 or head[1] == ARGV[1])
    and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('DEL', KEYS[5])
  return {1, marker, created, now, changed, longest}
end
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[4]), ARGV[1])
end
redis.call('SET', KEYS[5], '1', 'PX', ARGV[4])
return {0, marker, created, now, changed, longest}
"""
#: KEYS: queue, my waiter key; ARGV: token
LEAVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
#: KEYS: lock, queue; ARGV: token, waiter key prefix, wake key prefix. Wakes the first live waiter.
RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
for _, waiter in ipairs(redis.call('ZRANGE', KEYS[2], 0, 7)) do
  if redis.call('EXISTS', ARGV[2] .. waiter) == 1 then
    redis.call('RPUSH', ARGV[3] .. waiter, '1')
    redis.call('PEXPIRE', ARGV[3] .. waiter, 5000)
    break
  end
end
return 1
"""
WRITE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('KWLEASE') end
local rank = {ms = 1, us = 2, ns = 3}
local high, unit, hold = ARGV[2], ARGV[3], ARGV[4]
local cur = redis.call('HMGET', KEYS[2], 'high_water', 'unit')
if cur[1] and cur[1] ~= '0' then
  local finer = rank[unit] - rank[cur[2]]
  if finer < 0 then return redis.error_reply('KWUNIT ' .. cur[2]) end
  local old = cur[1] .. string.rep('0', 3 * finer)
  if #old > #high or (#old == #high and old > high) then high = old end
end
redis.call('HSET', KEYS[2], 'high_water', high, 'unit', unit, 'hold_until', hold)
return high
"""
