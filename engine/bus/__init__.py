"""The message bus: sessions talk to each other and to the operator.

Kept import-free on purpose: `swarmdeck bus …` imports `engine.bus.cli` from inside every
session, and that path must stay stdlib-only to start fast (see docs/protocol.md).
"""
