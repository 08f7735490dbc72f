"""The shared vocabulary of Confidant: messages, ids, the fixed sets of values
(roles, statuses, themes, languages …) and the parsers for what people type.

Every other package imports from here and this package imports nothing of
ours, so the words mean the same thing in the channels, the conversation and
the store.  Modules are imported by name (``domain.messages``), never through
this package.
"""
