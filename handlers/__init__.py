"""aiogram routers, one per audience (citizen, staff, supervisor, admin)."""
