"""The admin console on the web: the rota as a week grid, confidants,
absences, discreet rooms and the anonymous yearly figures, for HR staff and
prevention advisors, served on the web channel next to the employee page.

Its pages reach only the admin service (`handlers.administration`), which
offers no case, no message and no note: an admin cannot read a case here
because nothing behind these pages can fetch one.  `AdminConsole.mount`
puts them under ``/admin`` on a `bot.channels.web.WebChannel`.
"""
