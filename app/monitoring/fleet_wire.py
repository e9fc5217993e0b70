"""How the fleet's buckets are written in Redis: the one script a flush runs, and the fields.

Each time slot is a hash ``<prefix>:slot:<slot>`` with ``provider.operation|field`` fields: ``n``
(calls that reached the provider), ``ok``, ``open`` (breaker openings), ``sum``/``min``/``max``
(latency seconds), ``h<i>`` (calls in latency bucket ``i``), ``e:<error type>``,
``r:<rejection reason>``, ``c`` (US dollars the priced calls cost), ``lag|<instance>|<i>`` for
each replica's event-loop lag histogram, and the usage recorder's buckets as
``u|provider.operation|client|<spend field>``; ``_v`` is the version of its last change. A spend
field is ``n`` (calls that succeeded), ``x`` (of them unpriced), ``c`` (US dollars) or
``q:<unit>`` (billed units). Each provider's running totals of a UTC day or month are a hash
``<prefix>:spend:<period>`` (``d2026-12-07``, ``m2026-12``) with ``provider|<spend field>`` fields,
expiring after two days or 32 days; each flush reads back the current periods' hashes.
"""

from __future__ import annotations

from typing import Any

from ..calls import LATENCY_BUCKETS, LOOP_LAG_BUCKETS, ServiceKey
from ..resilience.budgets import DAY_TTL, MONTH_TTL
from .buckets import Bucket
from .stats import Key
from .usage import Spend, UsageKey

# ARGV: 1 prefix, 2 known epoch, 3 new epoch, 4 ttl (s), 5 last version read, 6 oldest live slot,
# 7 replica id, 8 replica report (JSON), 9 now, 10 oldest report kept, 11 the periods to read back
# (space-separated), 12 batches; then per batch its sequence number and its number of slots, and
# per slot the slot (or a period's name), its number of updates and (op, field, value) per update:
# op i = HINCRBY, f = HINCRBYFLOAT, m / M = keep the smaller / larger. A batch whose sequence number
# the replica had already had applied is skipped.
SYNC_SCRIPT = """
local p = ARGV[1]
local epoch = redis.call('get', p .. ':epoch')
if not epoch then
  epoch = ARGV[3]
  redis.call('set', p .. ':epoch', epoch)
end
if epoch ~= ARGV[2] then return {'epoch', epoch} end
local ttl, batches, i = tonumber(ARGV[4]), tonumber(ARGV[12]), 13
local applied = tonumber(redis.call('hget', p .. ':applied', ARGV[7]) or '0')
local version = tonumber(redis.call('get', p .. ':version') or '0')
local bumped = false
for b = 1, batches do
  local seq, groups = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  i = i + 2
  for g = 1, groups do
    local slot, n = ARGV[i], tonumber(ARGV[i + 1])
    local period = tonumber(slot) == nil
    local h = p .. (period and ':spend:' or ':slot:') .. slot
    i = i + 2
    if seq > applied then
      if not bumped then
        version = redis.call('incr', p .. ':version')
        bumped = true
      end
      for j = 1, n do
        local op, f, v = ARGV[i], ARGV[i + 1], ARGV[i + 2]
        i = i + 3
        if op == 'i' then redis.call('hincrby', h, f, v)
        elseif op == 'f' then redis.call('hincrbyfloat', h, f, v)
        else
          local old = tonumber(redis.call('hget', h, f) or '')
          if old == nil or (op == 'm' and tonumber(v) < old) or (op == 'M' and tonumber(v) > old) then
            redis.call('hset', h, f, v)
          end
        end
      end
      if period then
        redis.call('expire', h, string.sub(slot, 1, 1) == 'm' and MONTH_TTL or DAY_TTL)
      else
        redis.call('hset', h, '_v', version)
        redis.call('expire', h, ttl)
        redis.call('zadd', p .. ':slots', slot, slot)
      end
    else
      i = i + 3 * n
    end
  end
  if seq > applied then
    applied = seq
    redis.call('hset', p .. ':applied', ARGV[7], seq)
  end
end
redis.call('zremrangebyscore', p .. ':slots', '-inf', '(' .. ARGV[6])
local changed = {}
for _, s in ipairs(redis.call('zrangebyscore', p .. ':slots', ARGV[6], '+inf')) do
  local h = p .. ':slot:' .. s
  if tonumber(redis.call('hget', h, '_v') or '0') > tonumber(ARGV[5]) then
    table.insert(changed, s)
    table.insert(changed, redis.call('hgetall', h))
  end
end
redis.call('hset', p .. ':replicas', ARGV[7], ARGV[8])
redis.call('hset', p .. ':seen', ARGV[7], ARGV[9])
local seen = redis.call('hgetall', p .. ':seen')
for k = 1, #seen, 2 do
  if tonumber(seen[k + 1]) < tonumber(ARGV[10]) then
    redis.call('hdel', p .. ':seen', seen[k])
    redis.call('hdel', p .. ':replicas', seen[k])
    redis.call('hdel', p .. ':applied', seen[k])
  end
end
local periods = {}
for name in string.gmatch(ARGV[11], '%S+') do
  table.insert(periods, name)
  table.insert(periods, redis.call('hgetall', p .. ':spend:' .. name))
end
return {'ok', epoch, tostring(version), changed, redis.call('hvals', p .. ':replicas'), periods}
""".replace("MONTH_TTL", str(MONTH_TTL)).replace("DAY_TTL", str(DAY_TTL))


def copy(b: Bucket) -> Bucket:
    copy = Bucket(b.slot)
    copy.requests, copy.successes, copy.openings = b.requests, b.successes, b.openings
    copy.latency_sum, copy.latency_min, copy.latency_max = b.latency_sum, b.latency_min, b.latency_max
    copy.cost = b.cost
    copy.histogram, copy.errors, copy.rejections = list(b.histogram), dict(b.errors), dict(b.rejections)
    return copy


def bucket_updates(name: str, b: Bucket, sent: Bucket | None) -> list[Any]:
    """``(op, field, value)`` triples, flattened, that bring the fleet's slot from ``sent`` to ``b``."""
    was = sent or Bucket(b.slot)
    out: list[Any] = []
    for field, now, before in (("n", b.requests, was.requests), ("ok", b.successes, was.successes),
                               ("open", b.openings, was.openings)):
        if now != before:
            out += ("i", f"{name}|{field}", now - before)
    if b.latency_sum != was.latency_sum:
        out += ("f", f"{name}|sum", repr(b.latency_sum - was.latency_sum))
    if b.cost != was.cost:
        out += ("f", f"{name}|c", repr(b.cost - was.cost))
    if b.latency_min < was.latency_min:
        out += ("m", f"{name}|min", repr(b.latency_min))
    if b.latency_max > was.latency_max:
        out += ("M", f"{name}|max", repr(b.latency_max))
    out += [x for i, (now, before) in enumerate(zip(b.histogram, was.histogram, strict=True)) if now != before
            for x in ("i", f"{name}|h{i}", now - before)]
    for prefix, counts, previous in (("e", b.errors, was.errors), ("r", b.rejections, was.rejections)):
        out += [x for kind, count in counts.items() if count != previous.get(kind, 0)
                for x in ("i", f"{name}|{prefix}:{kind}", count - previous.get(kind, 0))]
    return out


def spend_updates(name: str, spend: Spend, sent: Spend | None) -> list[Any]:
    """``(op, field, value)`` triples, flattened, that bring ``name``'s spend from ``sent`` to ``spend``."""
    was = sent or Spend()
    out: list[Any] = []
    if spend.requests != was.requests:
        out += ("i", f"{name}|n", spend.requests - was.requests)
    if spend.unpriced != was.unpriced:
        out += ("i", f"{name}|x", spend.unpriced - was.unpriced)
    if spend.cost_usd != was.cost_usd:
        out += ("f", f"{name}|c", repr(spend.cost_usd - was.cost_usd))
    for unit, amount in spend.units.items():
        if amount != was.units.get(unit, 0.0):
            out += ("f", f"{name}|q:{unit}", repr(amount - was.units.get(unit, 0.0)))
    return out


def decode_spend(spend: Spend, field: str, value: str) -> None:
    """One spend field (``n``, ``x``, ``c``, ``q:<unit>``) into ``spend``."""
    if field == "n":
        spend.requests = int(value)
    elif field == "x":
        spend.unpriced = int(value)
    elif field == "c":
        spend.cost_usd = float(value)
    elif field.startswith("q:"):
        spend.units[field[2:]] = float(value)


def decode_period(fields: list[str]) -> dict[str, Spend]:
    """A period's hash (``HGETALL``: field, value, ...) as spend per provider."""
    providers: dict[str, Spend] = {}
    for j in range(0, len(fields), 2):
        provider, _, field = fields[j].rpartition("|")
        decode_spend(providers.setdefault(provider, Spend()), field, fields[j + 1])
    return providers


def decode(slot: int, field: str, value: str, buckets: dict[Key, Bucket], lag: dict[str, list[int]],
           usage: dict[UsageKey, Spend]) -> None:
    """One field of a slot's hash into the merged buckets."""
    if field == "_v":
        return
    head, _, rest = field.partition("|")
    if head == "u":
        name, _, rest = rest.partition("|")
        client, _, what = rest.rpartition("|")
        key = ServiceKey.parse(name)
        decode_spend(usage.setdefault((key.provider, key.operation, client), Spend()), what, value)
        return
    if head == "lag":
        instance, _, index = rest.rpartition("|")
        lag.setdefault(instance, [0] * (len(LOOP_LAG_BUCKETS) + 1))[int(index)] = int(value)
        return
    service = ServiceKey.parse(head)
    b = buckets.get((service.provider, service.operation))
    if b is None:
        b = buckets[(service.provider, service.operation)] = Bucket(slot)
    if rest == "n":
        b.requests = int(value)
    elif rest == "ok":
        b.successes = int(value)
    elif rest == "open":
        b.openings = int(value)
    elif rest == "sum":
        b.latency_sum = float(value)
    elif rest == "c":
        b.cost = float(value)
    elif rest == "min":
        b.latency_min = float(value)
    elif rest == "max":
        b.latency_max = float(value)
    elif rest.startswith("h") and int(rest[1:]) <= len(LATENCY_BUCKETS):
        b.histogram[int(rest[1:])] = int(value)
    elif rest.startswith("e:"):
        b.errors[rest[2:]] = int(value)
    elif rest.startswith("r:"):
        b.rejections[rest[2:]] = int(value)
