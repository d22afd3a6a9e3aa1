"""Shared measurements, one module per probe; checks get them through ``ctx.shared(probe)``."""
