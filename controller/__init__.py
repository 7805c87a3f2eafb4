"""The access controller daemon: one thread owns door and occupancy state."""
