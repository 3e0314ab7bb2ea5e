"""`credit-desk demo` and `credit-desk dev`: Credit Desk end to end without Slack or NetSuite accounts.

- :mod:`bot.demo.environment`: the loopback processes (NetSuite emulator, mock Slack Web API, the web app
  under a real HTTP server, the embedded worker) and the settings checks of `credit-desk dev`;
- :mod:`bot.demo.story`: the walk from intake to sync, verified step by step, kept as a transcript;
- :mod:`bot.demo.render`: Block Kit as terminal text (rich) and as an HTML transcript.

Nothing is started at import time; the CLI commands live in :mod:`bot.cli_demo`.
"""
