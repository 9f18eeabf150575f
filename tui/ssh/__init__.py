"""`swarmdeck serve --ssh`: one control-room process per SSH connection (docs/ssh.md).

Kept in tui/ because it spawns UI processes and needs asyncssh; engine/ never imports it.
"""
