"""The engine as a service: a control socket (server.py) and an Engine twin over it
(client.py), speaking the versioned protocol of docs/engine-protocol.md."""
