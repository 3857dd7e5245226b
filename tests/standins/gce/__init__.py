"""Google Compute Engine, Secret Manager, OAuth and the metadata server, checked against Google's discovery documents."""
