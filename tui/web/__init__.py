"""`swarmdeck serve --web` / `attach --web`: the control room in a browser (docs/web.md).

Textual's own web serving (textual-serve: an xterm.js page and one app process per
websocket under Textual's WebDriver), with swarmdeck's roles: a token per role, checked
before anything is spawned, and a room that attaches to the engine with that role.
"""
