"""The bill: how a utility charges for energy (pure, no I/O)."""
