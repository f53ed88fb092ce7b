"""The rules of Huiyin: paths, classifier, deadlines, calendar, router, lifecycle.

Pure Python. Nothing here talks to Telegram, a database or the clock: time comes in
as an argument, configuration as loaded data.
"""
