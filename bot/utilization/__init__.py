"""The sales rep dashboard (`/utilization`, App Home) and the alerts sent after each mirror refresh.

`service` decides who is asking and what they may see and computes each customer's standing; `alerts` tells
reps once per crossing of the near or over line. SQL lives in `storage.repositories.utilization`, Block Kit in
`blocks.utilization`, Slack listeners in `handlers.utilization`.
"""
