"""Registry metadata: repositories, manifests, tags, blob links, uploads (SQL)."""
