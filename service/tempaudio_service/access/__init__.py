"""Who asks, and how much: ServiceAccount identity and the quotas' rule."""
