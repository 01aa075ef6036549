"""Rules shared by the auth service, the registry and the CLI.

This package is the one home of: signing keys and JWKS (`shared.keys`), JWT
issue and verification (`shared.tokens`), the scope model (`shared.scopes`),
the OCI name, tag and digest grammars (`shared.names`), the SQL migration
runner (`shared.database`) and the small Prometheus exposition (`shared.metrics`).
"""
