"""A local stand-in for the Telegram Bot API, spoken to over real HTTP."""
