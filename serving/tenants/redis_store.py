"""The Redis store (`tenant_store.kind: redis`): counters and ledger shared by every ingress replica.

One Lua script checks the caps and takes a reservation atomically (Redis runs a script
alone), another settles it; both take `now` from the caller, so the window and the
periods are the policy's (a reservation is charged to the periods it was taken in,
whatever the settling replica's clock). All of a tenant's keys share one hash tag
(`PREFIX:{tenant}:...`), so they live on one node of a Redis Cluster too. The spend
hash is the ledger (persist it with AOF); rate and reservation keys expire by themselves.
Any Redis error or a call slower than the socket timeout raises StoreUnavailable.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from serving.tenants.policy import WINDOW_S, Ask, Usage, period_keys
from serving.tenants.store import Grant, Reservation, StoreUnavailable, new_reservation

# KEYS: rate_n, rate_t, live (zset id -> lease end), livedata (hash id -> json), spend (hash period -> usd)
_USAGE = """
local function usage(now, day, month)
  local first = math.floor(now) - __WINDOW__ + 1
  local req, tok, oldest = 0, 0, nil
  local r = redis.call('HGETALL', KEYS[1])
  for i = 1, #r, 2 do
    local sec = tonumber(r[i])
    if sec < first then
      redis.call('HDEL', KEYS[1], r[i])
      redis.call('HDEL', KEYS[2], r[i])
    else
      req = req + tonumber(r[i + 1])
      if oldest == nil or sec < oldest then oldest = sec end
    end
  end
  local t = redis.call('HGETALL', KEYS[2])
  for i = 1, #t, 2 do
    if tonumber(t[i]) >= first then tok = tok + tonumber(t[i + 1]) end
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do redis.call('HDEL', KEYS[4], id) end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  local conc, rday, rmonth = 0, 0, 0
  for _, v in ipairs(redis.call('HVALS', KEYS[4])) do
    local d = cjson.decode(v)
    conc = conc + 1
    if d.day == day then rday = rday + d.usd end
    if d.month == month then rmonth = rmonth + d.usd end
  end
  local sday = tonumber(redis.call('HGET', KEYS[5], day) or '0')
  local smonth = tonumber(redis.call('HGET', KEYS[5], month) or '0')
  local reset = __WINDOW__
  if oldest ~= nil then reset = oldest + __WINDOW__ - now end
  return {req, tok, conc, sday + rday, smonth + rmonth, reset}
end
local function out(ok, refused, u)
  return {ok, refused, u[1], u[2], u[3], string.format('%.17g', u[4]), string.format('%.17g', u[5]),
          string.format('%.17g', u[6])}
end
""".replace("__WINDOW__", str(WINDOW_S))

# ARGV: now, day, month, check_only, tokens, usd, id, lease_s, then caps (rpm, tpm, concurrent, day, month; '' = none)
_RESERVE = (
    _USAGE
    + """
local now, day, month = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local u = usage(now, day, month)
if ARGV[4] == '1' then return out(1, '', u) end
local tokens, usd = tonumber(ARGV[5]), tonumber(ARGV[6])
local checks = {
  {'requests_per_min', u[1] + 1, tonumber(ARGV[9])}, {'tokens_per_min', u[2] + tokens, tonumber(ARGV[10])},
  {'concurrent', u[3] + 1, tonumber(ARGV[11])}, {'usd_per_day', u[4] + usd, tonumber(ARGV[12])},
  {'usd_per_month', u[5] + usd, tonumber(ARGV[13])},
}
for _, c in ipairs(checks) do
  if c[3] ~= nil and c[2] > c[3] then return out(0, c[1], u) end
end
local sec = tostring(math.floor(now))
local lease_end = now + tonumber(ARGV[8])
redis.call('HINCRBY', KEYS[1], sec, 1)
redis.call('HINCRBY', KEYS[2], sec, tokens)
redis.call('ZADD', KEYS[3], lease_end, ARGV[7])
redis.call('HSET', KEYS[4], ARGV[7], cjson.encode({day = day, month = month, usd = usd}))
for i = 1, 2 do redis.call('EXPIRE', KEYS[i], __KEEP__) end
for i = 3, 4 do redis.call('EXPIRE', KEYS[i], math.ceil(tonumber(ARGV[8])) + 60) end
return out(1, '', u)
"""
).replace("__KEEP__", str(2 * WINDOW_S))

# ARGV: id, day, month, usd, second, token delta
_SETTLE = """
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HINCRBYFLOAT', KEYS[5], ARGV[2], ARGV[4])
redis.call('HINCRBYFLOAT', KEYS[5], ARGV[3], ARGV[4])
if redis.call('HEXISTS', KEYS[2], ARGV[5]) == 1 then redis.call('HINCRBY', KEYS[2], ARGV[5], ARGV[6]) end
return 1
"""


def _cap(v: float | None) -> str:
    return "" if v is None else repr(v)


class RedisStore:
    """Counters, reservations and the spend ledger in Redis (one round trip per call)."""

    kind = "redis"
    shared = True

    def __init__(self, url: str, prefix: str = "petit", lease_s: float = 900.0, timeout_s: float = 0.1) -> None:
        self.prefix, self.lease_s = prefix, lease_s
        self._r = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True
        )
        self._reserve = self._r.register_script(_RESERVE)
        self._settle = self._r.register_script(_SETTLE)

    def _keys(self, tenant: str) -> list[str]:
        base = f"{self.prefix}:{{{tenant}}}"
        return [f"{base}:{k}" for k in ("rate_n", "rate_t", "live", "livedata", "spend")]

    async def _call(self, script: Any, keys: list[str], args: list[object]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except (RedisError, OSError) as err:
            raise StoreUnavailable(f"redis store: {type(err).__name__}: {err}") from err

    async def _script(self, tenant: str, ask: Ask | None, now: float, rid: str = "") -> tuple[bool, str, Usage]:
        day, month = period_keys(now)
        a = ask or Ask(0, 0.0)
        args: list[object] = [repr(now), day, month, "1" if ask is None else "0", a.tokens, repr(a.usd), rid]
        args += [repr(self.lease_s), _cap(a.requests_per_min), _cap(a.tokens_per_min), _cap(a.concurrent)]
        args += [_cap(a.usd_per_day), _cap(a.usd_per_month)]
        ok, refused, req, tok, conc, sday, smonth, reset = await self._call(self._reserve, self._keys(tenant), args)
        usage = Usage(int(req), int(tok), int(conc), float(sday), float(smonth), float(reset))
        return bool(int(ok)), refused, usage

    async def usage(self, tenant: str, now: float) -> Usage:
        return (await self._script(tenant, None, now))[2]

    async def reserve(self, tenant: str, ask: Ask, now: float) -> Grant:
        r = new_reservation(tenant, ask, now)
        ok, refused, usage = await self._script(tenant, ask, now, r.id)
        return Grant(r, usage) if ok else Grant(None, usage, refused)

    async def settle(self, reservation: Reservation, tokens: int, usd: float, now: float) -> None:
        r = reservation
        args: list[object] = [r.id, r.day, r.month, repr(usd), str(r.second), tokens - r.tokens]
        await self._call(self._settle, self._keys(r.tenant), args)

    async def spend(self, tenant: str, period: str) -> float:
        try:
            v = await self._r.hget(self._keys(tenant)[4], period)
        except (RedisError, OSError) as err:
            raise StoreUnavailable(f"redis store: {type(err).__name__}: {err}") from err
        return 0.0 if v is None else float(v)

    async def close(self) -> None:
        await self._r.aclose()
