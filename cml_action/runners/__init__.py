"""Self-hosted runners on cloud VMs: launch, teardown, sweep, and the forge-side registries."""
