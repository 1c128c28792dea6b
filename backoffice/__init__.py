"""The top layer: what staff see across apps (admin site, dashboard, timelines, roles).

It may import every app; nothing imports it.
"""
