"""Assembly and infrastructure: settings, database, inbox/outbox, scheduler, web, sandbox, CLI."""
