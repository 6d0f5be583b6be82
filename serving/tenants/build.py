"""`build_store`: the tenant store a fleet's `tenant_store` names (the one place that picks a kind)."""

from __future__ import annotations

from collections.abc import Mapping

from serving.fleet.tenants import TenantStoreConfig
from serving.tenants.redis_store import RedisStore
from serving.tenants.sqlite_store import SqliteStore
from serving.tenants.store import MemoryStore, TenantStore


class TenantStoreError(ValueError):
    """The store cannot be built from this config and environment (e.g. the Redis URL variable is unset)."""


def build_store(config: TenantStoreConfig, env: Mapping[str, str]) -> TenantStore:
    """The configured store. Raises TenantStoreError when kind redis has no URL in `env`."""
    if config.kind == "memory":
        return MemoryStore(config.lease_s)
    if config.kind == "sqlite":
        return SqliteStore(config.sqlite_path, config.lease_s, busy_timeout_s=config.timeout_ms / 1e3)
    url = env.get(config.redis_url_env, "").strip()
    if not url:
        raise TenantStoreError(f"tenant_store.kind is redis but {config.redis_url_env} is not set (a redis:// URL)")
    return RedisStore(url, config.key_prefix, config.lease_s, config.timeout_ms / 1e3)


def describe_store(store: TenantStore) -> str:
    """One line for logs and /health on what the store shares."""
    if store.shared:
        return f"{store.kind} (shared by the ingress replicas that use it)"
    return f"{store.kind} (embedded: this process only, each ingress replica counts alone, lost at restart)"
