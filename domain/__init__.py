"""The domain vocabulary, below every other package: enumerations, reason codes and alarm
kinds with their sentences, the PIN policy, the training-validity rule, and the site file's
shape. It imports nothing of nyutai's (import-linter holds this)."""
