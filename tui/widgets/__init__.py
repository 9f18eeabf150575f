"""The control room's widgets; each one shows one part of the engine's state."""
