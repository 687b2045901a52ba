"""Berth's core: configuration, database, models, domain services and the boundaries
to Docker engines and registries. Imported as `berth`; lives in platform/berth."""
