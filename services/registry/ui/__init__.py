"""The web dashboard served at ``/ui/``: its static files and how they are loaded.

``static/`` holds what the browser gets, as written (HTML, CSS, ES modules; no
build step). `assets.load_assets` reads it once; ``routes/ui.py`` serves it.
"""
