"""End-to-end benchmark: simulated citizens file petitions through the sandbox Bot API over
real HTTP; the bot under test (Huiyin, or a bare aiogram echo bot as the floor) runs in its
own process. ``python -m bench.e2e --help``; the numbers are in docs/performance.md.
"""
